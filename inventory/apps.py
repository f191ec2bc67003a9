from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    label = "inventory"
    database = "inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from inventory import handlers  # noqa: F401  registers the subscriptions
