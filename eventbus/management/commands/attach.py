"""manage.py attach <context>: see eventbus/subscriptions.py."""

from eventbus.management.commands._subscription import SubscriptionCommand


class Command(SubscriptionCommand):
    action = "attach"
