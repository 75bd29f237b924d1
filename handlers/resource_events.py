"""Event Grid trigger: ARM resource events move requests to their next stage."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("resource_events")
@bp.event_grid_trigger(arg_name="event")
def resource_events(event: func.EventGridEvent) -> None:
    """Route one ARM event; events about anything else are ignored."""
    from shared import dependencies
    from shared.arm_events import ArmEvent
    from shared.resource_events import handle_resource_event

    view = ArmEvent.from_parts(id=event.id, event_type=event.event_type, subject=event.subject, data=event.get_json())
    if not view.is_resource_event:
        return
    handle_resource_event(view, dependencies.current())
