"""The baseline: a bare Celery task chain with no framework around it.

Each hop records when it ran and sends the next hop to the next queue with
apply_async, on the same broker, queues, workers and settings as eventflow.
"""

import time

from celery import shared_task

from bench.recorder import record

BASELINE_TASK = "bench.baseline_hop"


@shared_task(name=BASELINE_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def baseline_hop(key: str, hop: int, queues: list, sent_at: float) -> None:
    record(key, hop=hop, sent_at=sent_at, done_at=time.time())
    if hop + 1 < len(queues):
        baseline_hop.apply_async(args=[key, hop + 1, queues, time.time()], queue=queues[hop + 1])
