"""Event Grid trigger: ARM resource events move requests to their next stage."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("resource_events")
@bp.event_grid_trigger(arg_name="event")
def resource_events(event: func.EventGridEvent) -> None:
    """Route one ARM event; events about anything else are ignored."""
    # The handler's modules load on the first invocation, not when the host indexes the app (cold start).
    from shared import bootstrap
    from shared.arm.events import ArmEvent

    view = ArmEvent.from_parts(id=event.id, event_type=event.event_type, subject=event.subject, data=event.get_json(),
                               event_time=event.event_time)
    if not view.is_resource_event:
        return
    bootstrap.current().route_event(view)
