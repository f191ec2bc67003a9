"""One lock per key for the rest of a transaction: how services keep a check and the
act that depends on it together when several workers run the same context at once.

PostgreSQL (READ COMMITTED) takes a transaction-level advisory lock on a 64-bit hash
of the key, released at commit or rollback. SQLite needs nothing: every transaction
there starts IMMEDIATE (config/env.py), so writers of one database run one at a time.
"""

from __future__ import annotations

from django.db import connections


def lock_key(using: str, key: str) -> None:
    """Wait until no other transaction of database `using` holds `key`, then hold it
    until this transaction ends. Call it inside `transaction.atomic(using=using)`."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("lock_key needs a transaction: call it inside transaction.atomic")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
