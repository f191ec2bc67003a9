"""The Celery app: one queue per context, JSON only, late acks (settings: CELERY_*)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("eventflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["eventbus"])


# Traces (eventbus/tracing.py), only with OTEL_EXPORTER_OTLP_ENDPOINT set: each pool process
# sets up its own exporter after the fork (the exporter's thread does not survive one), and
# with it Celery's instrumentation (run/<task> spans around its tasks, apply_async/<task> for
# what it sends). The worker's main process never does: it runs no task body (the dashboard's
# batching strategy hands its batches to the pool, where delivering_batch makes their spans).
_worker_name = "worker"


@signals.celeryd_init.connect(weak=False)
def _name_worker(sender=None, **_) -> None:
    global _worker_name
    _worker_name = f"worker-{str(sender or '').split('@')[0] or 'celery'}"  # -n orders@%h: worker-orders


@signals.worker_process_init.connect(weak=False)
def _trace_pool_process(**_) -> None:
    from eventbus import tracing

    tracing.setup(_worker_name)


@signals.worker_process_shutdown.connect(weak=False)
def _flush_traces(**_) -> None:
    from eventbus import tracing

    tracing.flush()
