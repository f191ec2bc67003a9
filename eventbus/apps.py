from django.apps import AppConfig


class EventbusConfig(AppConfig):
    name = "eventbus"
    label = "eventbus"
    verbose_name = "Event bus (outbox, inbox, dead letters)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from eventbus import registry, subscriptions

        registry.register_sweep("eventbus", subscriptions.replay_due)  # attached contexts catch up
