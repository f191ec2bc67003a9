from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    label = "orders"
    database = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from orders import handlers  # noqa: F401  registers the subscriptions
