"""Service Bus trigger: scheduled looks, at a pool (a resize timed out) or at a request's resource still in progress."""

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
    """Look at one pool when a resize has timed out, or at one resource of a request still in progress."""
    # The handler's modules load on the first invocation, not when the host indexes the app (cold start).
    from shared import dependencies
    from shared.guard.sweep import PoolGuard
    from shared.messaging import PoolCheck, RequestCheck, is_request_check
    from shared.pipeline.reconcile import look_at_request

    body = message.get_body()
    if is_request_check(body):
        request_check = RequestCheck.from_body(body)
        if request_check is not None:
            look_at_request(dependencies.current(), request_check)
        return
    check = PoolCheck.from_body(body)
    if check is not None:
        PoolGuard(dependencies.current()).check(check.pool_id, check.attempt, check.seen_nodes, check.seen_at, check.pace)
