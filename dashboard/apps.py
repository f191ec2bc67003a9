from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    label = "dashboard"
    database = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from dashboard import handlers, retention  # noqa: F401  registers the subscriptions and pruning
