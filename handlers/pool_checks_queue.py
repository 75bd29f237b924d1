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
    """Look at one pool (a resize in progress), at one resource of a request still in progress, or adopt a paced batch
    of pools' images (record and lock them)."""
    # The handler's modules load on the first invocation, not when the host indexes the app (cold start).
    from shared import bootstrap
    from shared.messaging import Adoption, PoolCheck, RequestCheck, is_adoption, is_request_check

    body = message.get_body()
    if is_adoption(body):
        adoption = Adoption.from_body(body)
        if adoption is not None:
            bootstrap.current().guard().adopt(adoption.pools)
        return
    if is_request_check(body):
        request_check = RequestCheck.from_body(body)
        if request_check is not None:
            bootstrap.current().pipeline().look_at(request_check)
        return
    check = PoolCheck.from_body(body)
    if check is not None:
        bootstrap.current().guard().look(check)
