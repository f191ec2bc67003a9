import eventbus


class InventoryConfig(eventbus.ContextConfig):
    name = label = database = "inventory"
