from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "tests.probe"
    label = "probe"
    # Its handler runs in the payments worker, so its effects live in payments' database.
    database = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tests.probe import handlers  # noqa: F401
