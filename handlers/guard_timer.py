"""Timer trigger: the pool guard's sweep (the safety net behind events and scheduled checks)."""

import json
import logging

import azure.functions as func

from shared import settings

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("pool_guard_sweep")
@bp.timer_trigger(arg_name="timer", schedule=f"%{settings.GUARD_SCHEDULE}%", use_monitor=True)
def pool_guard_sweep(timer: func.TimerRequest) -> None:
    """Re-drive stuck requests and keep every guarded pool resizing towards its target; log what the sweep did."""
    # The handler's modules load on the first invocation, not when the host indexes the app (cold start).
    from shared import bootstrap

    summary = bootstrap.current().guard().run_sweep().summary()
    log.info("pool guard sweep: %s", json.dumps(summary, sort_keys=True), extra={"sweepReport": summary})
