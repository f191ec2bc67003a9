import eventbus


class OrdersConfig(eventbus.ContextConfig):
    name = label = database = "orders"
