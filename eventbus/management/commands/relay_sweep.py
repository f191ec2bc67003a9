"""Resend outbox rows that the after-commit relay could not send, every second or two."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from eventbus import retention, tracing
from eventbus.relay import sweep_once


class Command(BaseCommand):
    help = ("Run the relay sweep: send committed outbox rows still unsent (broker outage, crash), "
            "confirm or resend sent ones, the contexts' sweeps, and the retention policy.")

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="sweep once and exit")
        parser.add_argument("--interval", type=float, default=settings.EVENTFLOW_SWEEP_INTERVAL)

    def handle(self, *args, once=False, interval=1.0, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        tracing.setup("sweep")  # its resends continue each event's trace
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"relay sweep: every {interval}s")
        while not stopping:
            try:
                sent = sweep_once()
            except Exception as exc:  # a database or broker hiccup: say so, try again
                self.stderr.write(f"relay sweep failed: {exc}")
                sent = {}
            if any(sent.values()):
                self.stdout.write("relay sweep sent " + ", ".join(f"{c}={n}" for c, n in sent.items() if n))
            try:  # the retention policy, every EVENTFLOW_RETENTION_INTERVAL seconds
                retention.apply_if_due()
            except Exception as exc:
                self.stderr.write(f"retention failed: {exc}")
            if once:
                break
            time.sleep(interval)
