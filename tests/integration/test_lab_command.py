"""`manage.py lab` tells the story on a running server: event-driven orders survive an
offline inventory, command-driven ones fail fast and leave nothing behind."""

import io

import pytest
from django.core.management import call_command

from dashboard.metrics import comparison
from dashboard.log_queries import last_seq
from tests.support.flow import seed_products

pytestmark = [pytest.mark.live]


def test_lab_prints_the_comparison(stack, live_db, daphne_url):
    seed_products({"LAB": ("3.00", 1000)})
    mark = last_seq()
    out = io.StringIO()
    call_command("lab", orders=2, offline=1, url=daphne_url, wait=90, stdout=out)
    report = out.getvalue()
    print(report)
    assert "1) Everything online" in report and "2) Inventory offline" in report and "3) Inventory back" in report
    assert report.count("failed: inventory did not answer ReserveStock") == 2
    assert "Comparison" in report and "while offline" in report
    table = comparison(after_seq=mark)
    event, command = table["modes"]["event"], table["modes"]["command"]
    assert event["all"]["confirmed"] == 6 and event["while_offline"]["confirmed"] == 2
    assert command["all"]["confirmed"] == 2 and command["while_offline"]["failed"] == 2
    assert command["while_offline"]["confirmed"] == 0
    # The decoupling act: shipping detached, orders decided all the same, then attached and caught up.
    assert "4) Decoupling: shipping detached" in report and "5) shipping attached" in report
    assert report.count("event-driven orders decided: 2/2") == 3
    decoupled = table["decoupling"]
    assert decoupled["context"] == "shipping" and decoupled["placed_while_detached"] == 2
    assert decoupled["downtime"] == 0 and decoupled["replayed"] >= 2
    assert (f"added a subscriber (shipping): producer changes 0, downtime 0, events replayed {decoupled['replayed']}"
            in report)
