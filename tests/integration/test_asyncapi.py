"""The AsyncAPI 3.0 document (GET /api/asyncapi.json, manage.py asyncapi) and /catalog/, on a real Daphne."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from contracts import command_types, event_class, event_types
from eventbus import registry
from tests.support.flow import seed_products

pytestmark = [pytest.mark.live]
ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = json.loads((ROOT / "tests" / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text())


def get(daphne_url: str, path: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(daphne_url + path, timeout=30) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def test_the_document_is_valid_asyncapi_3_and_covers_every_message_and_context_queue(daphne_url):
    status, content_type, body = get(daphne_url, "/api/asyncapi.json")
    assert status == 200 and content_type == "application/json"
    doc = json.loads(body)
    jsonschema.Draft7Validator(OFFICIAL).validate(doc)
    # The validator does reject what is not AsyncAPI 3.0 (2.x's "publish" action, a missing channel).
    broken = copy.deepcopy(doc)
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert not jsonschema.Draft7Validator(OFFICIAL).is_valid(broken)

    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == {"orders", "inventory", "payments", "shipping", "dashboard"}
    messages = doc["components"]["messages"]
    assert set(messages) == set(event_types()) | set(command_types())
    for name, message in messages.items():
        meta = message["x-eventflow"]
        assert meta["version"] >= 1 and message["description"] and message["examples"], name
        # Each example fits its own payload schema (refs resolved inside the document).
        schema = {**doc, "$ref": f"#/components/messages/{name}/payload"}
        jsonschema.Draft7Validator(schema).validate(message["examples"][0]["payload"])
    # Subscribers come from the live subscriptions, the producer from the catalog.
    requested = messages["OrderRequested"]["x-eventflow"]
    assert requested["producer"] == event_class("OrderRequested").producer == "orders"
    assert requested["subscribers"] == registry.subscribers_of("OrderRequested")
    assert {"inventory", "dashboard"} <= set(requested["subscribers"])
    assert "OrderRequested" in doc["channels"]["inventory"]["messages"]
    assert messages["ReserveStock"]["x-eventflow"]["subscribers"] == ["inventory"]
    assert "ReserveStock" in doc["channels"]["inventory"]["messages"]
    # A payload the bus would refuse is refused by the document too.
    schema = {**doc, "$ref": "#/components/messages/OrderRequested/payload"}
    bad = copy.deepcopy(messages["OrderRequested"]["examples"][0]["payload"])
    bad["payload"]["lines"][0]["qty"] = "two"
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)


def test_manage_py_asyncapi_prints_the_same_document(daphne_url):
    result = subprocess.run([sys.executable, "manage.py", "asyncapi"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(get(daphne_url, "/api/asyncapi.json")[2])


def test_the_catalog_page_shows_meaning_fields_producer_subscribers_activity_and_log_link(stack, live_db, daphne_url):
    seed_products({"A": ("5.00", 3)}, prefix="CAT")  # an InventoryChanged the dashboard logs
    stack.wait_idle(60)
    status, _, page = get(daphne_url, "/catalog/")
    assert status == 200
    card = re.search(r'<article class="card message" id="InventoryChanged".*?</article>', page, re.S).group(0)
    assert "The authoritative state of one product" in card
    assert re.search(r"producer</dt><dd><span class=\"context-tag\">inventory</span>", card)
    assert '<span class="context-tag">orders</span>' in card and '<span class="context-tag">dashboard</span>' in card
    assert '<td class="mono">available</td><td>integer</td>' in card
    rate = re.search(r'data-field="rate">(\d+) in the last 5 min', card)
    assert rate and int(rate.group(1)) >= 1
    assert "<time datetime=" in card
    assert 'href="/events/?event_type=InventoryChanged"' in card
    never = re.search(r'<article class="card message" id="PaymentVoided".*?</article>', page, re.S).group(0)
    assert 'data-field="rate">0 in the last 5 min' in never
