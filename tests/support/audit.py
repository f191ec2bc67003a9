"""A Jepsen-style audit of delivery: what the test did, against what each subscriber got.

It does not ask the bus who should receive what. The expected subscribers of each
event type are the table below, written by hand from the catalog's intent; the
events expected in the outboxes are counted from the test's own inputs (its probes
and orders); "applied twice" is measured on business effects (probe effects, stock
moves and payment captures per order), never on inbox rows, which a unique
constraint already guards. A dead letter is not a delivery: any new one fails the
audit unless the test says it expects it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from config.routers import context_names as contexts  # the one list of contexts
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage

DASHBOARD = "dashboard"

# Who must receive each event type. Written here on purpose, not read from
# eventbus.registry: a routing bug in the registry must fail the audit.
EXPECTED_SUBSCRIBERS: dict[str, frozenset[str]] = {
    "OrderRequested": frozenset({"orders", "inventory", DASHBOARD}),
    "PaymentRequested": frozenset({"payments", DASHBOARD}),
    "InventoryChanged": frozenset({"orders", "shipping", DASHBOARD}),
    "StockReserved": frozenset({"orders", DASHBOARD}),
    "StockReservationFailed": frozenset({"orders", DASHBOARD}),
    "StockReleased": frozenset({DASHBOARD}),
    "PaymentAuthorized": frozenset({"orders", DASHBOARD}),
    "PaymentDeclined": frozenset({"orders", DASHBOARD}),
    "PaymentCaptured": frozenset({DASHBOARD}),
    "PaymentVoided": frozenset({DASHBOARD}),
    "OrderConfirmed": frozenset({"inventory", "payments", "shipping", DASHBOARD}),
    "OrderRejected": frozenset({"inventory", "payments", "shipping", DASHBOARD}),
    "ShipmentScheduled": frozenset({DASHBOARD}),
    "ProbePinged": frozenset({"payments", DASHBOARD}),  # the test-only probe context
}




def _last_id(model, ctx: str) -> int:
    return model.objects.using(ctx).order_by("-id").values_list("id", flat=True).first() or 0


@dataclass(frozen=True)
class Mark:
    outbox: dict[str, int]
    dead: dict[str, int]


def outbox_mark() -> Mark:
    """The last outbox row and dead letter of each context: the audit judges what comes after."""
    return Mark(outbox={ctx: _last_id(OutboxMessage, ctx) for ctx in contexts()},
                dead={ctx: _last_id(DeadLetter, ctx) for ctx in contexts()})


@dataclass
class Audit:
    committed: int = 0
    problems: list[str] = field(default_factory=list)  # outbox rows that do not match what the test did
    lost: dict[str, list[str]] = field(default_factory=dict)  # subscriber -> event ids missing from its inbox
    dead_letters: list[str] = field(default_factory=list)  # unexpected new dead letters
    missing_from_log: list[str] = field(default_factory=list)
    applied_twice: list[str] = field(default_factory=list)  # business effects seen more than once
    effects_missing: list[str] = field(default_factory=list)  # business effects never applied
    measured: int = 0  # how many probes or orders the effects were measured on

    @property
    def lost_count(self) -> int:
        return sum(len(ids) for ids in self.lost.values())

    def assert_clean(self):
        assert self.committed > 0, "the audit saw no committed event"
        assert self.measured > 0, "the audit measured no business effect"
        assert not self.problems, f"the outboxes do not match what the test did: {self.problems[:5]}"
        assert self.lost_count == 0, f"lost deliveries: { {k: v[:5] for k, v in self.lost.items()} }"
        assert not self.dead_letters, f"unexpected dead letters: {self.dead_letters[:5]}"
        assert not self.missing_from_log, f"missing from the dashboard log: {self.missing_from_log[:5]}"
        assert not self.applied_twice, f"applied twice: {self.applied_twice[:5]}"
        assert not self.effects_missing, f"effects never applied: {self.effects_missing[:5]}"


def _rows_since(mark: Mark) -> list[tuple[str, str, str, str, dict]]:
    rows = []
    for ctx in contexts():
        for event_id, event_type, correlation_id, envelope in (
            OutboxMessage.objects.using(ctx).filter(id__gt=mark.outbox.get(ctx, 0))
            .values_list("event_id", "event_type", "correlation_id", "envelope")
        ):
            rows.append((ctx, str(event_id), event_type, str(correlation_id), envelope["payload"]))
    return rows


def _audit_probes(result: Audit, rows, probes: list[str]) -> None:
    from tests.probe.models import ProbeEffect

    published = Counter(payload["probe_id"] for _, _, event_type, _, payload in rows if event_type == "ProbePinged")
    if published != Counter(probes):
        result.problems.append(f"ProbePinged rows {sum(published.values())} for {len(probes)} probes published "
                               f"(unexpected: {sorted(set(published) - set(probes))[:3]}, "
                               f"missing: {sorted(set(probes) - set(published))[:3]})")
    effects = Counter(ProbeEffect.objects.using("payments").filter(probe_id__in=probes).values_list("probe_id", flat=True))
    result.applied_twice += [f"probe {p} x{n}" for p, n in effects.items() if n > 1]
    result.effects_missing += [f"probe {p}" for p in probes if effects[p] == 0]
    result.measured += len(probes)


def _audit_orders(result: Audit, rows, orders: list[str], placed: list[str]) -> None:
    from inventory.models import Reservation
    from orders.models import Order

    by_order: dict[str, Counter] = defaultdict(Counter)
    correlation_of: dict[str, set[str]] = defaultdict(set)
    for _, _, event_type, correlation_id, payload in rows:
        if "order_id" in payload:
            by_order[payload["order_id"]][event_type] += 1
            correlation_of[payload["order_id"]].add(correlation_id)
    requested = Counter({o: c["OrderRequested"] for o, c in by_order.items() if c["OrderRequested"]})
    if requested != Counter(placed):
        result.problems.append(f"OrderRequested rows {sum(requested.values())} for {len(placed)} orders placed")
    stock_moves = Counter(correlation_id for _, _, event_type, correlation_id, _ in rows if event_type == "InventoryChanged")
    statuses = {str(o): status for o, status in
                Order.objects.using("orders").filter(order_id__in=orders).values_list("order_id", "status")}
    reservations = {str(r.order_id): r for r in Reservation.objects.using("inventory").filter(order_id__in=orders)}
    for order_id in orders:
        events, status = by_order[str(order_id)], statuses.get(str(order_id))
        decided = events["OrderConfirmed"] + events["OrderRejected"]
        for event_type in ("OrderConfirmed", "OrderRejected", "StockReserved", "StockReservationFailed",
                           "StockReleased", "PaymentAuthorized", "PaymentDeclined", "PaymentCaptured", "PaymentVoided",
                           "ShipmentScheduled"):
            if events[event_type] > 1:
                result.applied_twice.append(f"{order_id} {event_type} x{events[event_type]}")
        if order_id in placed:  # a replayed order's decision was delivered, not committed here
            if decided != 1:
                result.effects_missing.append(f"{order_id} decided {decided} times")
            if events["PaymentCaptured"] != (1 if status == Order.CONFIRMED else 0):
                result.effects_missing.append(f"{order_id} {status} with {events['PaymentCaptured']} captures")
        # A held reservation moves each of its SKUs twice: reserve, then commit or release.
        reservation = reservations.get(str(order_id))
        held = reservation is not None and reservation.status != Reservation.FAILED
        expected_moves = 2 * len({line["sku"] for line in reservation.lines}) if held else 0
        moves = sum(stock_moves[c] for c in correlation_of[str(order_id)])
        if len(correlation_of[str(order_id)]) != 1:
            result.problems.append(f"{order_id} has correlations {sorted(correlation_of[str(order_id)])}")
        if moves > expected_moves:
            result.applied_twice.append(f"{order_id} stock moves {moves} > {expected_moves}")
        elif moves < expected_moves:
            result.effects_missing.append(f"{order_id} stock moves {moves} < {expected_moves}")
    result.measured += len(orders)


def audit_since(mark: Mark, *, probes: list[str] | None = None, orders: list[str] | None = None,
                placed_orders: list[str] | None = None, expected_dead_letters: int = 0) -> Audit:
    """Audit every outbox row committed since `mark` against the test's `probes` (published
    with publish_probe) and `orders` (placed with order_place; `placed_orders` when some
    of them were replayed rather than placed). At least one of them must be given."""
    from dashboard.models import LogEntry

    assert probes or orders, "an audit must measure business effects: pass the test's probes or orders"
    result = Audit()
    rows = _rows_since(mark)
    result.committed = len(rows)
    expected: dict[str, set[str]] = defaultdict(set)
    for ctx, event_id, event_type, _, _ in rows:
        if event_type not in EXPECTED_SUBSCRIBERS:
            result.problems.append(f"{ctx} committed {event_type} {event_id}, a type the audit does not know")
            continue
        for subscriber in EXPECTED_SUBSCRIBERS[event_type]:
            expected[subscriber].add(event_id)
    for subscriber, ids in expected.items():
        got = {str(e) for e in InboxMessage.objects.using(subscriber).filter(event_id__in=list(ids)).values_list("event_id", flat=True)}
        lost = sorted(ids - got)
        if lost:
            result.lost[subscriber] = lost
    dead = [f"{ctx}: {event_type} {event_id}: {error[:120]}" for ctx in contexts()
            for event_id, event_type, error in DeadLetter.objects.using(ctx).filter(id__gt=mark.dead.get(ctx, 0))
            .values_list("event_id", "event_type", "error")]
    if len(dead) != expected_dead_letters:
        result.dead_letters = dead or [f"expected {expected_dead_letters} dead letters, found none"]
    committed = {event_id for _, event_id, _, _, _ in rows}
    logged = {str(e) for e in LogEntry.objects.using("dashboard").filter(kind="event", event_id__in=list(committed))
              .values_list("event_id", flat=True)}
    result.missing_from_log = sorted(committed - logged)
    if probes:
        _audit_probes(result, rows, probes)
    if orders:
        _audit_orders(result, rows, [str(o) for o in orders],
                      [str(o) for o in (orders if placed_orders is None else placed_orders)])
    return result
