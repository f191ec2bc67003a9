"""manage.py detach <context>: see eventbus/subscriptions.py."""

from eventbus.management.commands._subscription import SubscriptionCommand


class Command(SubscriptionCommand):
    action = "detach"
