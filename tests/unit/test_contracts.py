"""The catalog refuses what does not fit, naming the field."""

import copy

import pytest

from contracts import (ContractError, Customer, Line, OrderRequested, Shortage, build_envelope, describe_shortages,
                       merge_lines, parse_envelope, shortages_of)


def order_requested_envelope() -> dict:
    event = OrderRequested(
        order_id="o-1", customer=Customer(name="Ada", email="ada@example.com"),
        lines=(Line(sku="SKU-1", qty=2),), payment_token="tok_visa",
    )
    return build_envelope(event, producer="orders").as_dict()


def test_round_trip_keeps_everything():
    data = order_requested_envelope()
    envelope = parse_envelope(copy.deepcopy(data))
    assert envelope.as_dict() == data
    assert envelope.event.lines[0].qty == 2
    assert envelope.event.customer.email == "ada@example.com"


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_trace_context_is_optional_and_travels_when_present():
    plain = order_requested_envelope()
    assert "traceparent" not in plain and "tracestate" not in plain
    assert parse_envelope(copy.deepcopy(plain)).trace_id is None
    traced = {**plain, "traceparent": TRACEPARENT, "tracestate": "vendor=opaque"}
    envelope = parse_envelope(copy.deepcopy(traced))
    assert envelope.as_dict() == traced
    assert envelope.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    built = build_envelope(envelope.event, producer="orders", traceparent=TRACEPARENT)
    assert built.as_dict()["traceparent"] == TRACEPARENT and "tracestate" not in built.as_dict()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(event_type="OrderTeleported"), "event_type"),
        (lambda d: d["payload"].pop("payment_token"), "payload.payment_token"),
        (lambda d: d["payload"]["lines"][0].update(qty="2"), "payload.lines[0].qty"),
        (lambda d: d["payload"]["lines"][0].update(qty=True), "payload.lines[0].qty"),
        (lambda d: d["payload"]["customer"].update(phone="123"), "payload.customer.phone"),
        (lambda d: d["payload"].update(discount=5), "payload.discount"),
        (lambda d: d["payload"].update(lines={"sku": "x"}), "payload.lines"),
        (lambda d: d.pop("correlation_id"), "correlation_id"),
        (lambda d: d.update(event_id="not-a-uuid"), "event_id"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(producer="payments"), "producer"),
        (lambda d: d.update(extra="x"), "extra"),
        (lambda d: d.update(traceparent="00-abc-def-01"), "traceparent"),
        (lambda d: d.update(traceparent=TRACEPARENT.upper()), "traceparent"),
        (lambda d: d.update(traceparent=7), "traceparent"),
        (lambda d: d.update(tracestate="vendor=1"), "tracestate"),
        (lambda d: d.update(traceparent=TRACEPARENT, tracestate="x" * 513), "tracestate"),
    ],
)
def test_parse_names_the_offending_field(mutate, field):
    data = order_requested_envelope()
    mutate(data)
    with pytest.raises(ContractError) as caught:
        parse_envelope(data)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_build_refuses_a_payload_of_the_wrong_type():
    event = OrderRequested(order_id="o-1", customer=Customer(name="Ada", email="a@b.c"),
                           lines=(Line(sku="S", qty="2"),), payment_token="tok_visa")
    with pytest.raises(ContractError, match=r"lines\[0\]\.qty"):
        build_envelope(event, producer="orders")


def test_build_refuses_the_wrong_producer():
    event = OrderRequested(order_id="o-1", customer=Customer(name="Ada", email="a@b.c"),
                           lines=(Line(sku="S", qty=1),), payment_token="tok_visa")
    with pytest.raises(ContractError) as caught:
        build_envelope(event, producer="inventory")
    assert caught.value.field == "producer"


def test_a_shortage_is_computed_and_worded_the_same_for_every_context():
    wanted = merge_lines([Line(sku="B", qty=2), Line(sku="A", qty=1), Line(sku="B", qty=2), Line(sku="C", qty=1)])
    assert wanted == {"B": 4, "A": 1, "C": 1}
    shortages = shortages_of(wanted, {"A": 1, "B": 3})  # A is covered exactly; C is unknown
    assert shortages == (Shortage(sku="B", requested=4, available=3), Shortage(sku="C", requested=1, available=0))
    assert describe_shortages(shortages) == "B (requested 4, available 3), C (requested 1, available 0)"
    assert describe_shortages(()) == ""
