import eventbus


class PaymentsConfig(eventbus.ContextConfig):
    name = label = database = "payments"
