import eventbus


class BenchConfig(eventbus.ContextConfig):
    name = label = "bench"
    # No models: what the bench handlers record goes to Redis (see bench.recorder).
    database = "payments"
    registers = ("handlers", "tasks")  # the events, their handlers and the baseline task
