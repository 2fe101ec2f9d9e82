"""Transactions re-run when the database refused them for a reason that passes: a deadlock
(PostgreSQL SQLSTATE 40P01), a serialisation failure (40001), or SQLite's "database is locked".

The whole transaction runs again, a few times with jittered backoff, never just the statement
that failed (after a deadlock PostgreSQL has rolled everything back). Only the outermost
transaction can be re-run: inside someone else's `atomic` block the helper runs once and the
error goes up to whoever opened it. Any other error is raised at once.
"""

import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, connection, transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
ATTEMPTS = 4
BACKOFF_SECONDS = 0.05  # the n-th retry waits up to 0.05 * 2**(n-1) s, drawn at random


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or what Django wrapped in it) is a refusal worth trying again."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) in TRANSIENT_SQLSTATES:  # psycopg 3
            return True
        if isinstance(seen, sqlite3.OperationalError) and "database is locked" in str(seen):
            return True
        seen = seen.__cause__
    return False


def retrying(fn: Callable[[], T], *, atomic: bool = True, attempts: int = ATTEMPTS) -> T:
    """Runs `fn()` (in a transaction of its own when `atomic`) and returns what it returns; a
    transient refusal runs it again, up to `attempts` times in all, then is raised.

    `atomic=False` is for a body that opens its own transactions (a task): it is re-run whole,
    so it must be safe to run twice, as tasks are.
    """
    if connection.in_atomic_block:  # not ours to re-run: the outer block's owner retries
        if atomic:
            with transaction.atomic():
                return fn()
        return fn()
    for attempt in range(1, attempts + 1):
        try:
            if atomic:
                with transaction.atomic():
                    return fn()
            return fn()
        except DatabaseError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            pause = random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1))  # noqa: S311
            log.info("transient database error (%s); attempt %d of %d", exc, attempt + 1, attempts)
            time.sleep(pause)
    raise AssertionError("unreachable")


def atomic_with_retry(fn: Callable[..., T]) -> Callable[..., T]:
    """`@transaction.atomic` that re-runs the whole function on a transient refusal (when it is
    the outermost transaction)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return retrying(lambda: fn(*args, **kwargs))

    return wrapper
