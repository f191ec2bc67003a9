"""The command-driven mode of the comparison lab: orders drives the flow itself.

Orders sends each step as a command to the context that owns the data and waits
for the reply, with a timeout: ReserveStock, AuthorizePayment, CommitStock,
CapturePayment — or, when a step fails, the releases of what earlier steps hold.
The owners still make every change through their own services (single writer);
what changes is who waits for whom. Compare with the choreography in services.py,
where nobody waits.

A command left unanswered (a timeout, a broker error) may still take effect: a
slow commit, an owner killed between commit and reply, a clock behind ours. So
every failure ends the order REJECTED and publishes OrderRejected, whose handlers
release whatever the owners hold for it, including a committed reservation or a
captured payment, whenever they get to it; owners that did answer are also asked
at once, by command. An order whose sender died before deciding it is rejected
by the sweep (order_abandoned_reject) once its last deadline has passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contracts import AuthorizePayment, CapturePayment, CommitStock, ReleaseStock, ReserveStock, VoidPayment
from eventbus import CommandFailed, send_command
from orders.models import Order
from orders.services import DB, order_decide, order_open, order_request

log = logging.getLogger("orders.command_flow")

# The most commands one order sends: four steps, then at most two releases.
MAX_COMMANDS = 6
# What releases what an owner may hold for an order.
RELEASES = {"inventory": ReleaseStock, "payments": VoidPayment}


@dataclass(frozen=True)
class CommandDrivenOrder:
    order_id: str
    correlation_id: str
    status: str
    reason: str


class OrderTimedOut(Exception):
    """A context did not answer (in time, or at all); the order was rejected and nothing is kept."""

    def __init__(self, message: str, *, order_id: str, correlation_id: str):
        super().__init__(message)
        self.order_id, self.correlation_id = order_id, correlation_id


def abandoned_after() -> timedelta:
    """How long after its creation a command-driven order must be decided: every command
    it may send waited out in full, plus a margin."""
    return timedelta(seconds=MAX_COMMANDS * settings.EVENTFLOW_COMMAND_TIMEOUT + settings.EVENTFLOW_COMMAND_MARGIN)


def order_place_by_commands(*, customer_name, customer_email, lines, payment_token) -> CommandDrivenOrder:
    """Place and drive an order with commands; returns once it is decided.

    Raises OrderInvalid for bad input (nothing recorded, nothing sent) and
    OrderTimedOut when a context did not answer within EVENTFLOW_COMMAND_TIMEOUT
    or the broker failed; the order is then REJECTED and what it held released.
    """
    request, correlation_id = order_request(customer_name=customer_name, customer_email=customer_email,
                                            lines=lines, payment_token=payment_token)
    order_id, order_lines = request.order_id, request.lines
    with transaction.atomic(using=DB):
        # Prices from the local view; stock is for inventory to answer (ReserveStock).
        order = order_open(request, mode=Order.COMMAND, stock_check="remote", shortages=())

    held: set[str] = set()  # owners that may hold something for this order
    answering: set[str] = set()  # owners that answered; the others are not asked again

    def ask(command) -> dict:
        owner = command.owner
        held.add(owner)  # before sending: even an unanswered command may take effect
        reply = send_command(command, sender=DB, timeout=settings.EVENTFLOW_COMMAND_TIMEOUT,
                             correlation_id=correlation_id).reply
        answering.add(owner)
        return reply

    try:
        reply = ask(ReserveStock(order_id=order_id, lines=order_lines))
        if not reply["ok"]:
            held.discard("inventory")  # refused: nothing held
            return _reject(order, correlation_id, reply.get("reason") or "out of stock")
        reply = ask(AuthorizePayment(order_id=order_id, amount=f"{order.total:.2f}", currency=order.currency,
                                     payment_token=payment_token))
        if not reply["ok"]:
            held.discard("payments")
            _release(order_id, held & answering, correlation_id)
            return _reject(order, correlation_id, f"payment declined: {reply.get('reason') or 'declined'}")
        reply = ask(CommitStock(order_id=order_id))
        if not reply["ok"]:
            _release(order_id, held & answering, correlation_id)
            return _reject(order, correlation_id, reply.get("reason") or "stock could not be committed")
    except Exception as exc:  # a timeout, a broker error, anything: the order must still end
        answering.discard(getattr(exc, "owner", None))
        _release(order_id, held & answering, correlation_id)
        reason = f"{exc}; the order was rejected and nothing is kept"
        decided = _reject(order, correlation_id, reason)
        raise OrderTimedOut(decided.reason, order_id=order_id, correlation_id=correlation_id) from exc
    # Sold: from here on the order completes. An unanswered capture is done by payments
    # on OrderConfirmed when it is back (its capture is idempotent).
    try:
        ask(CapturePayment(order_id=order_id))
    except CommandFailed as exc:
        log.warning("order %s: %s; payments captures on OrderConfirmed", order_id, exc)
    return _confirm(order, correlation_id)


def _release(order_id: str, owners: set[str], correlation_id: str) -> None:
    """Ask the owners that answered to release what they hold, inventory first. An
    unanswered release is left to OrderRejected, which every owner handles when it is back."""
    for owner in sorted(owners):
        try:
            send_command(RELEASES[owner](order_id=order_id), sender=DB,
                         timeout=settings.EVENTFLOW_COMMAND_TIMEOUT, correlation_id=correlation_id)
        except Exception as exc:
            log.warning("order %s: release by %s left to OrderRejected: %s", order_id, owner, exc)


def _decide(order: Order, correlation_id: str | None, *, status: str, reason: str = "") -> CommandDrivenOrder:
    """Decide the order unless someone (the sweep) already did; publish the decision with it."""
    with transaction.atomic(using=DB):
        locked = Order.objects.using(DB).select_for_update().get(pk=order.pk)
        if locked.status == Order.PENDING:
            if status == Order.CONFIRMED:
                locked.has_reservation = locked.has_authorization = True
            order_decide(order=locked, status=status, reason=reason, correlation_id=correlation_id)
    return CommandDrivenOrder(str(locked.order_id), correlation_id or "", locked.status, locked.reason)


def _reject(order: Order, correlation_id: str, reason: str) -> CommandDrivenOrder:
    return _decide(order, correlation_id, status=Order.REJECTED, reason=reason)


def _confirm(order: Order, correlation_id: str) -> CommandDrivenOrder:
    return _decide(order, correlation_id, status=Order.CONFIRMED)


def order_abandoned_reject(*, limit: int = 100) -> int:
    """Reject command-driven orders still PENDING past their last deadline (their sender
    died or hung); OrderRejected makes the owners release what they hold. Returns how many."""
    cutoff = timezone.now() - abandoned_after()
    stale = list(Order.objects.using(DB).filter(mode=Order.COMMAND, status=Order.PENDING, created_at__lt=cutoff)
                 .order_by("id")[:limit])
    for order in stale:
        reason = (f"its sender stopped before deciding it; rejected by the sweep "
                  f"{abandoned_after().total_seconds():g}s after it was placed")
        _decide(order, None, status=Order.REJECTED, reason=reason)
    return len(stale)
