from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    label = "payments"
    database = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from payments import handlers  # noqa: F401  registers the subscriptions
