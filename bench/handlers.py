"""The eventflow side of the hop benchmark: payments takes BenchPinged."""

import os
import time

from django.db import transaction

from bench import events  # noqa: F401  registers the bench events in the catalog
from bench.recorder import record
from eventbus import subscribe


def on_bench_pinged(event, envelope):
    handled_at = time.time()
    # The hop is done when the handler's transaction (with the inbox row) committed.
    transaction.on_commit(
        lambda: record(f"bench:ping:{event.ping_id}", sent_at=event.sent_at, handled_at=handled_at,
                       committed_at=time.time(), pid=os.getpid()),
        using="payments",
    )


subscribe("payments", {"BenchPinged": on_bench_pinged})
