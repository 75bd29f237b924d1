"""Service Bus trigger: teams' pool requests."""

import azure.functions as func

from shared import settings

bp = func.Blueprint()


@bp.function_name("pool_requests")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name=f"%{settings.POOL_REQUESTS_QUEUE}%",
    connection=settings.SERVICEBUS_CONNECTION,
)
def pool_requests(message: func.ServiceBusMessage) -> None:
    """Validate, authorise, record and start one pool request."""
    # The handler's modules load on the first invocation, not when the host indexes the app (cold start).
    from shared import bootstrap
    from shared.intake.receive import IncomingMessage
    from shared.messaging import Redelivery

    services = bootstrap.current()
    body = message.get_body()
    redelivery = Redelivery.from_message(message.application_properties, body=body, message_id=message.message_id,
                                         key=services.settings.message_signing_key)
    services.intake().receive_with_retry(
        IncomingMessage(
            body=body,
            message_id=message.message_id,
            reply_to=message.reply_to,
            enqueued_at=message.enqueued_time_utc,
            attempt=redelivery.attempt,
            original_message_id=redelivery.original_message_id,
            original_enqueued_at=redelivery.original_enqueued_at,
        )
    )
