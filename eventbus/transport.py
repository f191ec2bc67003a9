"""What travels over Celery: a delivery per subscriber and a receipt per delivery."""

from __future__ import annotations

from config.celery import app

DELIVER_TASK = "eventbus.deliver"
RECEIPT_TASK = "eventbus.receipt"
RECEIPT_QUEUE = "dashboard"

# Fail fast when the broker is down: the sweep resends what did not leave.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def send_delivery(context: str, envelope: dict, *, sent_at: str, attempt: int = 1, countdown: float | None = None) -> None:
    app.send_task(
        DELIVER_TASK,
        args=[context, envelope],
        kwargs={"sent_at": sent_at, "attempt": attempt},
        # Celery would otherwise saferepr() the whole envelope for its logs on every send.
        argsrepr=f"({context!r}, <{envelope.get('event_type')} {envelope.get('event_id')}>)",
        kwargsrepr=f"{{'attempt': {attempt}}}",
        queue=context,
        routing_key=context,
        countdown=countdown,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def send_receipt(receipt: dict) -> None:
    app.send_task(
        RECEIPT_TASK,
        args=[receipt],
        argsrepr=f"(<receipt {receipt.get('context')} {receipt.get('event_id')} {receipt.get('outcome')}>,)",
        kwargsrepr="{}",
        queue=RECEIPT_QUEUE,
        routing_key=RECEIPT_QUEUE,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )
