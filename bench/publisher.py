"""`python -m bench.publisher RATE SECONDS OUT`: publish BenchBroadcast at RATE a second.

Every 20 ms the events due are published by inventory in one transaction (each
is relayed after the commit, as any event). Writes {"sent": n, "seconds": s,
"probe_ids": [...]} to OUT. Run as its own process (several for high rates) so
the publishing cost does not slow the measuring process.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

TICK = 0.02


def main(rate: float, seconds: float, out: str) -> None:
    import django

    django.setup()
    from django.db import transaction

    from bench.events import BenchBroadcast
    from eventbus import publish

    total = round(rate * seconds)
    probe_ids: list[str] = []
    start = time.monotonic()
    while len(probe_ids) < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1) - len(probe_ids)
        if due > 0:
            with transaction.atomic(using="inventory"):
                for _ in range(due):
                    probe_id = uuid.uuid4().hex
                    publish(BenchBroadcast(probe_id=probe_id, sent_at=time.time()), context="inventory")
                    probe_ids.append(probe_id)
        time.sleep(max(0.0, TICK - (time.monotonic() - start) % TICK))
    with open(out, "w") as handle:
        json.dump({"sent": len(probe_ids), "seconds": time.monotonic() - start, "probe_ids": probe_ids}, handle)


if __name__ == "__main__":
    main(float(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
