"""The shared body of `manage.py detach` and `manage.py attach`."""

import time

from django.core.management.base import BaseCommand, CommandError

from eventbus import control, subscriptions


class SubscriptionCommand(BaseCommand):
    action = ""

    @property
    def help(self):
        return {"detach": "Stop routing events to a context and stop its consumption (attach catches it up).",
                "attach": "Route events to a context again; it replays what it missed, then goes on live."}[self.action]

    def add_arguments(self, parser):
        parser.add_argument("context")
        if self.action == "attach":
            parser.add_argument("--wait", type=float, default=0,
                                help="seconds to wait for the replay to catch up, printing the lag")

    def handle(self, *args, context, wait=0, **options):
        if context not in control.context_names():
            raise CommandError(f"unknown context {context!r}; known: {', '.join(control.context_names())}")
        try:
            result = control.detach(context) if self.action == "detach" else control.attach(context)
        except (ValueError, subscriptions.AttachRefused) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{context}: {'attached' if result['attached'] else 'detached'}, "
                          f"lag {result['lag']}, replayed {result['replayed']}, workers {', '.join(result['workers']) or 'none'}")
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            state = subscriptions.state(context)
            self.stdout.write(f"  replaying: lag {state['lag']}, replayed {state['replayed']}")
            if not state["replaying"]:
                break
            time.sleep(1)
