import eventbus


class DashboardConfig(eventbus.ContextConfig):
    name = label = database = "dashboard"
    registers = ("handlers", "retention")  # its subscriptions and its pruning
