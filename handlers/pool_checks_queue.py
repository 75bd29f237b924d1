"""Service Bus trigger: scheduled per-pool checks, due when a resize the guard or the pipeline issued times out."""

import azure.functions as func

from shared import settings

bp = func.Blueprint()


@bp.function_name("pool_checks")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name=f"%{settings.POOL_CHECKS_QUEUE}%",
    connection=settings.SERVICEBUS_CONNECTION,
)
def pool_checks(message: func.ServiceBusMessage) -> None:
    """Look at one pool when a resize the guard or the pipeline issued has timed out."""
    # The handler's modules load on the first invocation, not when the host indexes the app (cold start).
    from shared import dependencies
    from shared.guard.sweep import PoolGuard
    from shared.messaging import PoolCheck

    check = PoolCheck.from_body(message.get_body())
    if check is not None:
        PoolGuard(dependencies.current()).check(check.pool_id, check.attempt, check.seen_nodes, check.seen_at, check.pace)
