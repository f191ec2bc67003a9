from django.apps import AppConfig


class EventbusConfig(AppConfig):
    name = "eventbus"
    label = "eventbus"
    verbose_name = "Event bus (outbox, inbox, dead letters)"
    default_auto_field = "django.db.models.BigAutoField"
