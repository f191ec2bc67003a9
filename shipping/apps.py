import eventbus


class ShippingConfig(eventbus.ContextConfig):
    name = label = database = "shipping"
