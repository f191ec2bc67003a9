"""What travels over Celery: a delivery per subscriber, and receipts coalesced per process
(eventbus/receipts.py) into one message to the dashboard per flush."""

from __future__ import annotations

from config.celery import app

DELIVER_TASK = "eventbus.deliver"
RECEIPT_TASK = "eventbus.receipt"  # one receipt: still accepted, no longer sent
RECEIPTS_TASK = "eventbus.receipts"
RECEIPT_QUEUE = "dashboard"

# Fail fast when the broker is down: the sweep resends what did not leave.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def send_deliveries(contexts, envelope: dict, *, sent_at: str) -> None:
    """One delivery per subscribing context, all on one producer (one pooled broker connection)."""
    with app.producer_or_acquire() as producer:
        for context in contexts:
            send_delivery(context, envelope, sent_at=sent_at, producer=producer)


def send_delivery(context: str, envelope: dict, *, sent_at: str, attempt: int = 1, countdown: float | None = None,
                  producer=None) -> None:
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
        producer=producer,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def send_receipt(receipt: dict) -> None:
    """Queue a receipt in this process's buffer; it leaves with the next flush (<= 20 ms)."""
    from eventbus.receipts import send_receipt as buffered

    buffered(receipt)


def send_receipts(receipts: list[dict], views: dict) -> None:
    """One message to the dashboard: receipts in the order they were made, and changed view rows."""
    app.send_task(
        RECEIPTS_TASK,
        args=[receipts, views],
        argsrepr=f"(<{len(receipts)} receipts>, <views of {sorted(views)}>)",
        kwargsrepr="{}",
        queue=RECEIPT_QUEUE,
        routing_key=RECEIPT_QUEUE,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )
