from django.apps import AppConfig


class ShippingConfig(AppConfig):
    name = "shipping"
    label = "shipping"
    database = "shipping"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from shipping import handlers  # noqa: F401  registers the subscriptions
