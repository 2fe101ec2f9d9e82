"""Sends the database never heard about: the "." went out but the hand-off's COMMIT was lost with
the database (a restart, a failover, a cut connection; campaigns.ledger.CommitUnknown).

The row then still says `sending` under the worker's claim, and once the claim goes stale the
sweeper would queue it again: the recipient would get the message twice. So the worker notes the
send here (Redis, which is up while PostgreSQL is not) before it reads the server's answer, and
settles it in the database as soon as it can; the sweeper settles what a worker could not (it
died, or the database stayed away longer than it waited) before it releases any stale claim.
Only losing the database and Redis together (or the worker dying in the microseconds between
the lost commit and this note) can still repeat a message.
"""

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

import redis
from django.db import DatabaseError, InterfaceError, connection
from django.utils.dateparse import parse_datetime

from campaigns import ledger
from marketing_ai import kv

logger = logging.getLogger(__name__)

KEY = "campaigns:unrecorded-sends"


@dataclass(frozen=True)
class Send:
    message_id: int
    claim: str
    sent_at: str
    address: str
    provider_id: str

    def record(self) -> bool:
        return ledger.record_sent(
            message_id=self.message_id,
            claim=uuid.UUID(self.claim),
            sent_at=parse_datetime(self.sent_at),
            address=self.address,
            provider_id=self.provider_id,
        )


def note(
    *, message_id: int, claim: uuid.UUID, sent_at: datetime, address: str, provider_id: str
) -> Send:
    """Keeps the send in Redis until it is recorded; where Redis fails too, says so loudly (the
    worker still tries to record it itself)."""
    send = Send(message_id, str(claim), sent_at.isoformat(), address, provider_id)
    try:
        kv.client().hset(KEY, str(message_id), json.dumps(asdict(send)))
    except redis.RedisError:
        logger.exception("message %s sent but neither database nor Redis took note", message_id)
    return send


def record(send: Send, *, wait_seconds: float) -> bool:
    """Records `send` as sent, reconnecting while the database is away, for up to
    `wait_seconds`; True once recorded (or found already so), False if the database stayed away
    (the note stays for the sweeper)."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            send.record()
        except (DatabaseError, InterfaceError):
            _reconnect()
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        _forget(send.message_id)
        return True


def settle_all() -> int:
    """Records every noted send (the sweeper, before it releases stale claims); how many."""
    try:
        noted = kv.client().hgetall(KEY)
    except redis.RedisError:
        logger.exception("cannot read the unrecorded sends; stale claims may repeat them")
        raise
    for raw in noted.values():
        send = Send(**json.loads(raw))
        send.record()
        _forget(send.message_id)
    return len(noted)


def pending_ids() -> set[int]:
    try:
        return {int(k) for k in kv.client().hkeys(KEY)}
    except redis.RedisError:
        return set()


def forget(message_id: int) -> None:
    """The server refused after the "." after all: nothing to record."""
    _forget(message_id)


def _forget(message_id: int) -> None:
    try:
        kv.client().hdel(KEY, str(message_id))
    except redis.RedisError:
        logger.warning("could not clear the note of message %s (the sweeper will)", message_id)


def _reconnect() -> None:
    """Drops the dead connection; Django opens a new one on the next query."""
    try:
        connection.close()
    except (DatabaseError, InterfaceError):
        connection.connection = None
