"""One module per capability, each exposing a Blueprint of thin triggers.

``BLUEPRINTS`` lists every blueprint ``function_app`` registers. Trigger
modules import only ``azure.functions`` and ``shared.settings`` at module level:
the rest loads on the first invocation (cold start).
"""

from . import intake, pool_guard, resource_events

BLUEPRINTS = [intake.bp, resource_events.bp, pool_guard.bp]
