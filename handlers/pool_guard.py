"""Pool guard triggers: a timer sweep (the safety net) and scheduled per-pool checks."""

import azure.functions as func

from shared import settings

bp = func.Blueprint()


@bp.function_name("pool_guard_sweep")
@bp.timer_trigger(arg_name="timer", schedule=f"%{settings.GUARD_SCHEDULE}%", use_monitor=True)
def pool_guard_sweep(timer: func.TimerRequest) -> None:
    """Re-drive stuck requests and keep every guarded pool resizing towards its target."""
    from shared import dependencies
    from shared.pool_guard import run_sweep

    run_sweep(dependencies.current())


@bp.function_name("pool_checks")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name=f"%{settings.POOL_CHECKS_QUEUE}%",
    connection=settings.SERVICEBUS_CONNECTION,
)
def pool_checks(message: func.ServiceBusMessage) -> None:
    """Look at one pool when a resize the guard or the pipeline issued has timed out."""
    from shared import dependencies
    from shared.pool_guard import PoolCheck, PoolGuard

    check = PoolCheck.from_body(message.get_body())
    if check is not None:
        PoolGuard(dependencies.current()).check(check.pool_id, check.attempt)
