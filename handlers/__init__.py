"""The Function App's triggers, one module per trigger, each exposing a Blueprint.

``BLUEPRINTS`` lists every blueprint ``function_app`` registers. Trigger
modules import only ``azure.functions`` and ``shared.settings`` at module level:
the rest loads on the first invocation (cold start).
"""

from . import guard_timer, pool_checks_queue, pool_requests_queue, resource_events_grid

BLUEPRINTS = [pool_requests_queue.bp, resource_events_grid.bp, guard_timer.bp, pool_checks_queue.bp]
