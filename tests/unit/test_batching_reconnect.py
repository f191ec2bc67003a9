"""The dashboard worker's batches across a lost broker connection (eventbus/batching.py).

The real proof is tests/faults/test_broker_faults.py (Redis restarted under load with the
strategy on); these pin the two rules it relies on, without a broker."""

from __future__ import annotations

from types import SimpleNamespace

from eventbus import batching


class FlakyChannel:
    """Like kombu's Redis channel with a BRPOP in flight on a dead socket: the first close
    fails in the read, before the channel marks itself closed."""

    def __init__(self, unacked):
        self.closed = False
        self._qos = SimpleNamespace(_delivered=dict.fromkeys(unacked))
        self.tries = 0

    def close(self):
        self.tries += 1
        if self.tries == 1:
            raise ConnectionError("Connection closed by server.")
        self.closed = True


def test_a_channel_holding_unacked_messages_is_closed_while_the_transport_is_whole():
    holding, idle = FlakyChannel(["t1", "t2"]), FlakyChannel([])
    connection = SimpleNamespace(_transport=SimpleNamespace(channels=[holding, idle]), _default_channel=holding)
    batching.close_holding_channels(connection)
    assert holding.closed and holding.tries == 2
    assert idle.tries == 0  # nothing to give back: left to Celery
    batching.close_holding_channels(None)  # no connection: nothing to do


class Pool:
    def __init__(self):
        self.jobs = []

    def apply_async(self, fn, args, callback, error_callback):
        self.jobs.append((args, callback))


def request(n, channel):
    return SimpleNamespace(id=f"r{n}", task_name="eventbus.receipts", args=[[], {}], kwargs={},
                           message=SimpleNamespace(channel=channel), acked=False,
                           acknowledge=lambda: None, reject=lambda requeue: None)


def test_a_batch_lost_with_the_connection_does_not_block_the_next_ones(monkeypatch):
    monkeypatch.setattr(batching.state, "task_accepted", lambda req: None)
    monkeypatch.setattr(batching.state, "task_ready", lambda req, successful=False: None)
    old, new = SimpleNamespace(closed=False), SimpleNamespace(closed=False)
    pool = Pool()
    consumer = SimpleNamespace(qos=None, pool=pool, task_consumer=SimpleNamespace(channel=old))
    batches = batching._Batches()
    batches.add(consumer, "dashboard", request(1, old))
    batches.add(consumer, "dashboard", request(2, old))  # waits behind the running batch
    assert len(pool.jobs) == 1
    # The connection is lost; the pool's flush may drop the running job without a callback.
    batches.forget_connection()
    old.closed = True
    consumer.task_consumer = SimpleNamespace(channel=new)
    batches.add(consumer, "dashboard", request(3, new))
    assert len(pool.jobs) == 2 and pool.jobs[1][0][1][0][0] == "eventbus.receipts"
    batches.add(consumer, "dashboard", request(4, new))  # waits behind the new batch
    pool.jobs[0][1](None)  # the old job calls back after all: its end must not start another
    assert len(pool.jobs) == 2
    pool.jobs[1][1](None)  # the new one ends: the waiting request goes
    assert len(pool.jobs) == 3
