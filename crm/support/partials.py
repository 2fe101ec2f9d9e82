"""A reply as it is being written: the worker writing the model's answer keeps the text so far
in Redis, and the widget's poll reads it beside the finished replies, so the customer sees the
answer grow.

Why polling the partial text, not a server-sent-event stream from the web: the web runs
gunicorn's sync workers (four by default), and an open event stream holds one for the whole
answer, so four customers reading answers would stop the site. A poll is a short request that
reads one Redis key; the widget polls faster while the text grows, and the same poll already
carries the finished reply, so there is no second path to fall back from.

Nothing here is the reply. The row reply_save writes (once, by its claim) is; a partial is only
shown while its message is still unanswered, under the attempt that is writing it now: a worker
that died mid-answer leaves text under its attempt, the sweep queues the message again as the
next attempt, and the old text is no longer read (it expires). So a partial is never shown
beside, or after, the reply it led to.
"""

import logging

import redis

from marketing_ai import kv

log = logging.getLogger(__name__)
# Longer than a reply turn may run (the task's time limit), so a slow answer keeps its text.
EXPIRES = 10 * 60


def _key(message_id: int, attempt: int) -> str:
    return f"mai:chat:partial:{message_id}:{attempt}"


def partial_write(message_id: int, attempt: int, text: str) -> None:
    """Keeps `text`, the answer to message `message_id` so far, for its `attempt`-th turn.
    Best effort: without Redis the reply still arrives whole."""
    if not kv.available():
        return
    try:
        kv.client().set(_key(message_id, attempt), text.encode(), ex=EXPIRES)
    except redis.RedisError:
        kv.failed()
        log.warning("could not keep the partial chat reply", exc_info=True)


def partial_clear(message_id: int, attempt: int) -> None:
    if not kv.available():
        return
    try:
        kv.client().delete(_key(message_id, attempt))
    except redis.RedisError:
        kv.failed()


def partials_read(pending: list[tuple[int, int]]) -> dict[int, str]:
    """The text so far of each (message id, attempt) that has any, by message id."""
    if not pending or not kv.available():
        return {}
    try:
        found = kv.client().mget([_key(pk, attempt) for pk, attempt in pending])
    except redis.RedisError:
        kv.failed()
        return {}
    return {pk: text.decode() for (pk, _), text in zip(pending, found, strict=True) if text}


def partials_shown(unanswered: list[tuple[int, int]], newest_reply: int) -> list[dict]:
    """[{message, text}] for the messages still unanswered ((id, attempt), read before the
    replies) that are newer than every reply read (`newest_reply`, 0 for none): a reply
    committed between the two reads makes its message's text stale."""
    written = partials_read([(pk, attempt) for pk, attempt in unanswered if pk > newest_reply])
    return [{"message": pk, "text": text} for pk, text in sorted(written.items())]
