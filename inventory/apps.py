from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    label = "inventory"
    database = "inventory"
    default_auto_field = "django.db.models.BigAutoField"
