"""The AppConfig of a bounded context (and of anything that subscribes like one)."""

from importlib import import_module

from django.apps import AppConfig


class ContextConfig(AppConfig):
    """A context's Django app: its models live in the database alias `database`, and the
    modules named in `registers` (its handlers.py) declare what it subscribes to when
    ready() imports them.

    A subclass's module must not hold ContextConfig itself as a name (write
    `import eventbus` and `class OrdersConfig(eventbus.ContextConfig)`): Django picks an
    app's config automatically only when its apps.py defines exactly one AppConfig class."""

    default_auto_field = "django.db.models.BigAutoField"
    database: str
    registers: tuple[str, ...] = ("handlers",)

    def ready(self):
        for module in self.registers:
            import_module(f"{self.name}.{module}")
