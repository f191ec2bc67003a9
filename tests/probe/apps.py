import eventbus


class ProbeConfig(eventbus.ContextConfig):
    name = "tests.probe"
    label = "probe"
    # Its handler runs in the payments worker, so its effects live in payments' database.
    database = "payments"
