"""State changes of the send ledger. Every change is a conditional UPDATE, so it happens once.

A message goes queued -> sending (claimed by one worker with a fresh claim id) -> sent, or back
to queued (a transient error, or its claim went stale because the worker died), or to failed /
skipped. The rule that makes a send happen exactly once:

    the row becomes `sent` (conditional on still holding the claim) and that commit is on its
    way to the database *before* the provider is told the message is final (for SMTP: before the
    terminating "." of DATA is written; the server discards a DATA that never ends).

So a worker killed at any point either never finished the DATA (the row is still `sending`, the
claim goes stale, the message is sent again, and the server kept nothing) or had already
committed `sent` (the message is not sent again). On PostgreSQL the COMMIT is written to the
server without waiting for its answer and the "." follows at once: the two writes are two
system calls apart, which is the only window in which a kill loses a message (never duplicates
one; no order of two writes to two sockets can be atomic). The COMMIT is held back in the
kernel (TCP_CORK) until the "." is written: otherwise its write wakes the database server, which
often takes the CPU at once and leaves the worker paused inside the window (bench/handoff.py
counts how often a kill lands there, corked and not). Two workers can never both commit `sent`
for one row: the update names the claim.

The database can go in the same window instead of the worker (a restart or failover: the COMMIT
written, its answer never read). Then the "." is out while the row may still say `sending`, and
its stale claim would send it again: hand_off raises CommitUnknown, and the worker notes the
send in Redis (campaigns.unrecorded) to be recorded as soon as the database is back — by itself,
or by the sweeper before it releases any stale claim.
"""

import select
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Case, F, Q, Value, When

from campaigns.models import Message

TABLE = Message._meta.db_table


class LostClaim(Exception):
    """This worker no longer holds the row (its claim went stale and another worker took it)."""


class CommitUnknown(Exception):
    """The point of no return ran (the "." went out), but the COMMIT's answer never came back:
    the database went away in between, so the row may still say `sending`. The caller must get
    `sent` recorded (record_sent) before the claim goes stale, or the message goes out twice."""


def claim_due(*, campaign_id: int, now: datetime, limit: int) -> tuple[uuid.UUID, list[int]]:
    """Claims up to `limit` due, queued messages of a campaign for this worker."""
    claim = uuid.uuid4()
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # Rows without a variant wait for an A/B winner; holdout rows are never queued.
    sql = (
        f"UPDATE {TABLE} SET state = 'sending', claim = %s, claimed_at = %s, "  # noqa: S608
        "attempts = attempts + 1 "
        f"WHERE id IN (SELECT id FROM {TABLE} WHERE campaign_id = %s AND state = 'queued' "
        "AND send_at <= %s AND variant_id IS NOT NULL "
        f"ORDER BY send_at, id LIMIT %s{lock}) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_uuid(claim), now, campaign_id, now, limit])
        ids = sorted(row[0] for row in cursor.fetchall())
    return claim, ids


def release_stale(*, older_than: datetime, campaign_ids: Sequence[int] | None = None) -> int:
    """Returns claimed rows whose worker stopped (claimed before `older_than`) to the queue.

    Safe even if that worker is alive after all: it can no longer commit `sent` for them.
    """
    rows = Message.objects.filter(state=Message.State.SENDING, claimed_at__lt=older_than)
    if campaign_ids is not None:
        rows = rows.filter(campaign_id__in=campaign_ids)
    return rows.update(state=Message.State.QUEUED, claim=None)


def hand_off(
    *,
    message_id: int,
    claim: uuid.UUID,
    sent_at: datetime,
    address: str,
    provider_id: str,
    point_of_no_return: Callable[[], None],
    also: Callable[[], None] | None = None,
) -> None:
    """Commits the row as sent, then runs `point_of_no_return` (e.g. writes the final "." of an
    SMTP DATA). `also` runs inside the same transaction (the webhook outbox row).

    Raises LostClaim (and never calls `point_of_no_return`) when the claim is no longer ours.
    An exception from `point_of_no_return` propagates after the commit has completed; the
    caller decides whether the provider kept the message (see `revert_sent`). Raises
    CommitUnknown when `point_of_no_return` ran and the commit's answer was lost.
    """
    with connection.cursor() as cursor:
        cursor.execute("BEGIN IMMEDIATE" if connection.vendor == "sqlite" else "BEGIN")
        try:
            cursor.execute(
                f"UPDATE {TABLE} SET state = 'sent', sent_at = %s, address = %s, "  # noqa: S608
                "provider_id = %s, reason = '' WHERE id = %s AND claim = %s AND state = 'sending'",
                [sent_at, address, provider_id, message_id, _uuid(claim)],
            )
            if cursor.rowcount != 1:
                raise LostClaim(str(message_id))
            if also is not None:
                also()
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        if connection.vendor == "postgresql":
            _commit_then(point_of_no_return)
        else:
            # Straight on the sqlite3 connection, so no Python runs between the commit and the
            # point of no return but the two calls themselves.
            connection.connection.execute("COMMIT")
            point_of_no_return()


def _commit_then(action: Callable[[], None]) -> None:
    """Writes COMMIT to the PostgreSQL socket, runs `action` before waiting for the answer,
    then reads the answer (and raises if the commit failed)."""
    pg = connection.connection.pgconn  # libpq under psycopg under Django
    fd = pg.socket
    corked = _cork(fd, True)
    try:
        pg.send_query(b"COMMIT")
        while pg.flush():
            select.select([], [fd], [], 1.0)
    except BaseException:
        if corked:
            _cork(fd, False)
        raise
    done = False
    try:
        action()
        done = True
    finally:
        if corked:
            _cork(fd, False)  # the COMMIT goes out now (or, if we die, at close)
        try:
            error = _commit_answer(pg)
        except Exception as exc:  # the connection went: the answer is lost, not the action
            if done:
                raise CommitUnknown(str(exc)) from exc
            raise
        if error and done:
            raise CommitUnknown(error)
        if error:
            raise RuntimeError(f"commit of a sent message failed: {error}")


def _commit_answer(pg) -> str | None:
    """Waits for the COMMIT's answer; its error message, or None."""
    while True:
        pg.consume_input()
        if not pg.is_busy():
            break
        select.select([pg.socket], [], [], 1.0)
    error = None
    while (result := pg.get_result()) is not None:
        if result.error_message:
            error = result.error_message.decode(errors="replace")
    return error


def _cork(fd: int, on: bool) -> bool:
    """Holds (or releases) what is written to a TCP socket; False where it is not TCP."""
    # Family and type given, so wrapping the descriptor costs no system calls of its own.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=fd)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))
        return True
    except OSError:  # a Unix-domain socket: the COMMIT goes out as written
        return False
    finally:
        sock.detach()  # the descriptor stays libpq's


def record_sent(
    *, message_id: int, claim: uuid.UUID, sent_at: datetime, address: str, provider_id: str
) -> bool:
    """Records `sent` for a message whose hand-off commit was lost (CommitUnknown): conditional
    on the claim, so it is a no-op where the lost commit had in fact landed."""
    return bool(
        Message.objects.filter(pk=message_id, claim=claim, state=Message.State.SENDING).update(
            state=Message.State.SENT,
            sent_at=sent_at,
            address=address,
            provider_id=provider_id,
            reason="",
        )
    )


def revert_sent(*, message_id: int, claim: uuid.UUID, retry_at: datetime, reason: str) -> bool:
    """The provider refused after the hand-off (e.g. SMTP 451 after DATA): queue it again."""
    return bool(
        Message.objects.filter(pk=message_id, claim=claim, state=Message.State.SENT).update(
            state=Message.State.QUEUED,
            send_at=retry_at,
            claim=None,
            sent_at=None,
            provider_id="",
            reason=reason[:300],
        )
    )


def retry_later(
    *,
    message_id: int,
    claim: uuid.UUID,
    retry_at: datetime,
    reason: str,
    refund_attempt: bool = False,
) -> bool:
    """Queues a claimed row again for `retry_at`. `refund_attempt`: it was never tried (its
    recipient's domain is throttled), so its claim does not use up one of its attempts."""
    attempts = F("attempts") - 1 if refund_attempt else F("attempts")
    return bool(
        Message.objects.filter(pk=message_id, claim=claim, state=Message.State.SENDING).update(
            state=Message.State.QUEUED,
            send_at=retry_at,
            claim=None,
            reason=reason[:300],
            attempts=attempts,
        )
    )


def retry_many(
    *, claim: uuid.UUID, retry_at: dict[int, datetime], reason: str, refund_attempt: bool = False
) -> int:
    """retry_later for several claimed rows at once ({message id: when}), in one UPDATE: the
    messages of a chunk whose domain is cooling down go back together. Returns how many were
    still ours."""
    if not retry_at:
        return 0
    attempts = F("attempts") - 1 if refund_attempt else F("attempts")
    return Message.objects.filter(
        pk__in=list(retry_at), claim=claim, state=Message.State.SENDING
    ).update(
        state=Message.State.QUEUED,
        send_at=Case(*(When(pk=pk, then=Value(at)) for pk, at in retry_at.items())),
        claim=None,
        reason=reason[:300],
        attempts=attempts,
    )


def postpone(*, campaign_id: int, where: Q, until: datetime, reason: str) -> int:
    """Moves a campaign's queued messages that match `where` (a condition on the message, such
    as its customer's address) and are due before `until` to `until`: a domain answered "slow
    down", so they are not claimed (and put back, one by one) while it cools down. Only rows
    nobody holds: the state is checked on the row itself, so one claimed meanwhile is left
    alone. The campaign's queued rows drive the query (the message_due index), each joined to
    its customer by key: its cost is the queue's length, not the workspace's size. Returns how
    many moved."""
    return (
        Message.objects.filter(
            campaign_id=campaign_id, state=Message.State.QUEUED, send_at__lt=until
        )
        .filter(where)
        .update(send_at=until, reason=reason[:300])
    )


def finish_unsent(
    *, message_id: int, claim: uuid.UUID, state: str, reason: str, from_state: str = "sending"
) -> bool:
    """Marks a claimed row failed or skipped (with why)."""
    return bool(
        Message.objects.filter(pk=message_id, claim=claim, state=from_state).update(
            state=state, reason=reason[:300]
        )
    )


def _uuid(value: uuid.UUID) -> object:
    # SQLite stores UUIDField as 32 hex characters; PostgreSQL takes the UUID itself.
    return value.hex if connection.vendor == "sqlite" else value


def retry_delay(attempts: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff: base, 2*base, 4*base ... up to cap (seconds)."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))
