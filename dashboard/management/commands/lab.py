"""`python manage.py lab`: the comparison lab's story, end to end, on the running stack.

Orders go through the public API of the running server (as a person's would);
inventory is taken offline with Celery's consumer control; the table at the end
is the one the dashboard's comparison panel shows.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard import log_queries, metrics
from dashboard.models import ControlAction
from eventbus import broker, control, registry, subscriptions

DASHBOARD = "dashboard"


def leaf_subscriber() -> str | None:
    """A context nobody depends on: it subscribes, and what it publishes only the dashboard
    takes (found from the routes, so the dashboard names no context it may detach)."""
    topology = registry.topology()
    depended_on = {r["producer"] for r in topology["routes"] if r["subscriber"] not in (DASHBOARD, r["producer"])}
    subscribers = {r["subscriber"] for r in topology["routes"]} - {DASHBOARD}
    producers = {r["producer"] for r in topology["routes"]}
    leaves = sorted((subscribers & producers) - depended_on)
    return leaves[0] if leaves else None


class Command(BaseCommand):
    help = ("Run N orders in each mode with everything online, then with inventory paused, then resumed; then "
            "detach a subscriber nobody depends on, place orders, attach it and watch it catch up; print the comparison.")

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=5, help="orders per mode and phase (default 5)")
        parser.add_argument("--offline", type=float, default=5.0, help="seconds inventory stays paused after the orders (default 5)")
        parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
                            help="the running server (default http://127.0.0.1:$PORT)")
        parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the event-driven orders to finish")

    # --- HTTP to the running server ------------------------------------------------
    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        timeout = settings.EVENTFLOW_COMMAND_TIMEOUT * 6 + 10
        while True:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                if error.code == 429:  # the stack's order rate limit: wait as it asks, then go on
                    wait = float(error.headers.get("Retry-After") or 1)
                    self.say(f"   rate limited: waiting {wait:g}s (EVENTFLOW_ORDER_RATE_LIMIT)")
                    time.sleep(wait)
                    continue
                return error.code, json.loads(error.read() or b"{}")
            except OSError as error:
                raise CommandError(f"cannot reach {self.url} ({error}): start the stack with `make run` first") from error

    def handle(self, *args, orders: int, offline: float, url: str, wait: float, **options):
        if orders < 1 or orders > 200:
            raise CommandError("--orders must be between 1 and 200")
        self.url = url.rstrip("/")
        status, health = self.call("GET", "/healthz")
        if status != 200:
            raise CommandError(f"the stack is not healthy: {health}")
        if control.consumer_status(max_age=0).get("inventory") != "online":
            raise CommandError("inventory's worker is not consuming (paused or stopped): resume it first")
        sku = self.pick_product(needed=orders * 4)
        mark = log_queries.last_seq()
        self.say(f"Lab: {orders} orders per mode and phase, product {sku}, server {self.url}")

        self.say("\n1) Everything online")
        event_ids = self.place_many("event", sku, orders)
        self.place_many("command", sku, orders)
        self.wait_decided(event_ids, wait)

        self.say(f"\n2) Inventory offline (paused with Celery's cancel_consumer) for the orders and {offline:g}s more")
        control.pause("inventory")
        ControlAction.objects.using("dashboard").create(context="inventory", action=ControlAction.PAUSE, user="lab")
        try:
            offline_event_ids = self.place_many("event", sku, orders)
            self.place_many("command", sku, orders)
            time.sleep(offline)
        finally:
            control.resume("inventory")
            ControlAction.objects.using("dashboard").create(context="inventory", action=ControlAction.RESUME, user="lab")
        self.say("\n3) Inventory back: the event-driven orders it missed complete now")
        self.wait_decided(offline_event_ids, wait)
        self.decoupling_act(sku, orders, wait)
        time.sleep(2)  # the last receipts reach the dashboard
        self.print_table(metrics.comparison(after_seq=mark))

    def decoupling_act(self, sku: str, orders: int, wait: float) -> None:
        """Detach a subscriber nobody depends on, place orders, attach it and watch it catch up."""
        leaf = leaf_subscriber()
        if leaf is None:
            self.say("\n4) Decoupling: skipped (no context whose events only the dashboard takes)")
            return
        self.say(f"\n4) Decoupling: {leaf} detached (no events routed to it), orders placed; nothing else is affected")
        control.detach(leaf)
        ControlAction.objects.using("dashboard").create(context=leaf, action=ControlAction.DETACH, user="lab")
        time.sleep(subscriptions.ROUTES_TTL * 1.5)  # every process routes without it
        self.wait_decided(self.place_many("event", sku, orders), wait)
        self.say(f"   {leaf} is {subscriptions.state(leaf)['lag']} events behind; its queue holds "
                 f"{broker.queue_depths([leaf])[leaf]}")
        self.say(f"\n5) {leaf} attached: it replays what it missed from the producers' outboxes, then goes on live")
        control.attach(leaf)
        ControlAction.objects.using("dashboard").create(context=leaf, action=ControlAction.ATTACH, user="lab")
        deadline = time.monotonic() + wait
        while (state := subscriptions.state(leaf))["replaying"] and time.monotonic() < deadline:
            self.say(f"   replaying: lag {state['lag']}, replayed {state['replayed']}")
            time.sleep(1)
        self.say(f"   caught up: lag {state['lag']}, replayed {state['replayed']}")

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def pick_product(self, *, needed: int) -> str:
        status, body = self.call("GET", "/api/products/")
        products = sorted(body.get("products", []), key=lambda p: p["available"], reverse=True)
        if status != 200 or not products or products[0]["available"] < needed:
            raise CommandError(f"no product has {needed} units available: restock one in the admin or run seed_demo")
        return products[0]["sku"]

    def place_many(self, mode: str, sku: str, count: int) -> list[str]:
        order_ids, outcomes = [], {}
        for index in range(count):
            started = time.monotonic()
            status, body = self.call("POST", "/api/orders/", {
                "customer": {"name": "Lab", "email": "lab@example.com"},
                "lines": [{"sku": sku, "qty": 1}], "payment_token": "tok_visa", "mode": mode,
            })
            elapsed = time.monotonic() - started
            if status in (200, 202):
                order_ids.append(body["order_id"])
                outcome = body.get("status", "accepted")
            elif status == 504:
                outcome = "failed: " + next(iter(body.get("errors", {}).values()), ["timeout"])[0]
            else:
                raise CommandError(f"the API refused a lab order ({status}): {body}")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            self.say(f"   {mode:7s} order {index + 1}/{count}: {outcome} in {elapsed * 1000:.0f} ms")
        return order_ids

    def wait_decided(self, order_ids: list[str], wait: float) -> None:
        deadline = time.monotonic() + wait
        pending = set(order_ids)
        while pending and time.monotonic() < deadline:
            for order_id in list(pending):
                status, body = self.call("GET", f"/api/orders/{order_id}/")
                if status == 200 and body.get("status") != "PENDING":
                    pending.discard(order_id)
            if pending:
                time.sleep(0.5)
        self.say(f"   event-driven orders decided: {len(order_ids) - len(pending)}/{len(order_ids)}"
                 + (f" ({len(pending)} still pending)" if pending else ""))

    def print_table(self, table: dict) -> None:
        columns = [("placed", "placed"), ("confirmed", "confirmed"), ("rejected", "rejected"), ("failed", "failed"),
                   ("pending", "pending"), ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"),
                   ("messages_per_order", "msgs/order"), ("hops_per_order", "hops/order"),
                   ("sync_waits_per_order", "sync waits")]
        header = f"{'mode':<10}{'orders':<16}" + "".join(f"{title:>11}" for _, title in columns)
        self.say("\nComparison (the dashboard's comparison panel shows the same)")
        self.say(header)
        self.say("-" * len(header))
        for mode, parts in table["modes"].items():
            for scope, title in (("all", "all"), ("while_offline", "while offline")):
                row = parts[scope]
                cells = "".join(f"{'-' if row[key] is None else row[key]:>11}" for key, _ in columns)
                self.say(f"{mode:<10}{title:<16}{cells}")
        decoupled = table.get("decoupling")
        if decoupled:
            self.say(f"\nadded a subscriber ({decoupled['context']}): producer changes {decoupled['producer_changes']}, "
                     f"downtime {decoupled['downtime']}, events replayed {decoupled['replayed']}")
        self.say("\nEvent-driven orders placed while inventory was offline were accepted at once and completed "
                 "after it came back; command-driven ones waited for inventory's reply, timed out and were "
                 "rejected with nothing kept.")
