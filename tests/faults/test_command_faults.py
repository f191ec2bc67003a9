"""Commands that time out never take effect silently: an owner that commits after its
sender gave up (slow, or killed between commit and reply), a broker error, a sender
that dies. Every such order ends REJECTED with everything it held released."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from eventbus import broker
from inventory.models import Reservation
from orders import command_flow
from orders.command_flow import OrderTimedOut, order_place_by_commands
from orders.models import Order
from payments.models import Payment
from tests.probe.handlers import command_fault_key
from tests.support.flow import assert_flow_invariants, seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def place(skus, qty=2):
    return order_place_by_commands(customer_name="Ada", customer_email="ada@example.com",
                                   lines=[{"sku": skus["A"], "qty": qty}], payment_token="tok_visa")


def settled(order_id):
    """Reservation and payment of a rejected order, once neither holds or took anything."""
    reservation = Reservation.objects.using("inventory").filter(order_id=order_id).first()
    payment = Payment.objects.using("payments").filter(order_id=order_id).first()
    if reservation and reservation.status in (Reservation.HELD, Reservation.COMMITTED):
        return None
    if payment and payment.status in (Payment.AUTHORIZED, Payment.CAPTURED):
        return None
    return (reservation.status if reservation else None, payment.status if payment else None)


@pytest.mark.parametrize("fault", ["slow", "kill"])
@pytest.mark.parametrize("command_type", ["ReserveStock", "AuthorizePayment", "CommitStock"])
def test_a_command_that_commits_after_its_sender_gave_up_is_reversed(stack, live_db, command_type, fault):
    skus = seed_products({"A": ("10.00", 50)})
    seconds = settings.EVENTFLOW_COMMAND_TIMEOUT + 2
    broker.client().set(command_fault_key(command_type), f"{fault}:{seconds}", ex=60)
    with pytest.raises(OrderTimedOut, match=f"did not answer {command_type}") as raised:
        place(skus)
    order_id = raised.value.order_id
    order = Order.objects.using("orders").get(order_id=order_id)
    assert order.status == Order.REJECTED and "nothing is kept" in order.reason
    # The owner did carry the command out after the sender gave up; the rejection undoes it.
    state = wait_for(lambda: settled(order_id), timeout=60, message="everything the order held released")
    assert state[0] == Reservation.RELEASED, state
    if command_type != "ReserveStock":
        assert state[1] == Payment.VOIDED, state
    stack.wait_idle(timeout=60)
    assert_flow_invariants([order_id], set(skus.values()))
    assert not broker.client().exists(command_fault_key(command_type))  # the fault did fire


@pytest.mark.parametrize("fault", ["slow", "kill"])
def test_an_unanswered_capture_still_completes_the_sale(stack, live_db, fault):
    skus = seed_products({"A": ("10.00", 50)})
    seconds = settings.EVENTFLOW_COMMAND_TIMEOUT + 2
    broker.client().set(command_fault_key("CapturePayment"), f"{fault}:{seconds}", ex=60)
    decided = place(skus)
    assert decided.status == Order.CONFIRMED
    wait_for(lambda: Payment.objects.using("payments").filter(order_id=decided.order_id,
                                                           status=Payment.CAPTURED).exists(),
             timeout=60, message="the payment captured")
    stack.wait_idle(timeout=60)
    assert_flow_invariants([decided.order_id], set(skus.values()))


def test_a_broker_error_mid_flow_rejects_the_order_and_releases_everything(stack, live_db, monkeypatch):
    skus = seed_products({"A": ("10.00", 50)})
    real_send = command_flow.send_command

    def failing_on_commit(command, **kwargs):
        if type(command).__name__ == "CommitStock":
            raise redis.ConnectionError("Error 111 connecting to the broker")
        return real_send(command, **kwargs)

    monkeypatch.setattr(command_flow, "send_command", failing_on_commit)
    with pytest.raises(OrderTimedOut, match="Error 111") as raised:
        place(skus)
    order_id = raised.value.order_id
    order = Order.objects.using("orders").get(order_id=order_id)
    assert order.status == Order.REJECTED and "Error 111" in order.reason
    assert wait_for(lambda: settled(order_id), timeout=60, message="released") == (Reservation.RELEASED, Payment.VOIDED)
    stack.wait_idle(timeout=60)
    assert_flow_invariants([order_id], set(skus.values()))


class SenderDied(BaseException):
    """Not an Exception: the sender's process ends here (a restart, a kill)."""


def test_the_sweep_rejects_an_order_whose_sender_died(stack, live_db, monkeypatch):
    skus = seed_products({"A": ("10.00", 50)})
    real_send = command_flow.send_command

    def dying_after_reserve(command, **kwargs):
        if type(command).__name__ == "AuthorizePayment":
            raise SenderDied()
        return real_send(command, **kwargs)

    monkeypatch.setattr(command_flow, "send_command", dying_after_reserve)
    with pytest.raises(SenderDied):
        place(skus)
    order = Order.objects.using("orders").get(customer_email="ada@example.com", status=Order.PENDING,
                                               mode=Order.COMMAND, lines__sku=skus["A"])
    assert Reservation.objects.using("inventory").get(order_id=order.order_id).status == Reservation.HELD
    # Its last deadline passes (moved back an hour rather than waited for); the running sweep finishes it.
    Order.objects.using("orders").filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))
    wait_for(lambda: Order.objects.using("orders").get(pk=order.pk).status == Order.REJECTED, timeout=30,
             message="the sweep to reject the abandoned order")
    assert "its sender stopped" in Order.objects.using("orders").get(pk=order.pk).reason
    assert wait_for(lambda: settled(str(order.order_id)), timeout=60, message="released") == (Reservation.RELEASED, None)
    stack.wait_idle(timeout=60)
    assert_flow_invariants([str(order.order_id)], set(skus.values()))


def test_an_owner_killed_between_commit_and_reply_answers_the_redelivery_with_the_stored_reply(stack, live_db):
    from contracts import Line, ReleaseStock, ReserveStock
    from eventbus.commands import send_command

    skus = seed_products({"A": ("10.00", 50)})
    order_id = f"direct-{uuid.uuid4()}"
    broker.client().set(command_fault_key("ReserveStock"), "kill:0", ex=60)
    # A deadline long enough for the killed worker's message to come back to a fresh one.
    sent = send_command(ReserveStock(order_id=order_id, lines=(Line(sku=skus["A"], qty=3),)), sender="orders",
                        timeout=60)
    assert sent.reply["ok"] is True and sent.reply.get("redelivered") is True, sent.reply  # not "duplicate"
    assert not broker.client().exists(command_fault_key("ReserveStock"))
    assert Reservation.objects.using("inventory").get(order_id=order_id).status == Reservation.HELD
    send_command(ReleaseStock(order_id=order_id), sender="orders", timeout=30)
    stack.wait_idle(timeout=60)
