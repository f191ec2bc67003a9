from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    label = "bench"
    # No models: what the bench handlers record goes to Redis (see bench.recorder).
    database = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from bench import handlers, tasks  # noqa: F401  registers the events, handlers and baseline task
