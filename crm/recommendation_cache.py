"""The cache of recommendation answers: its keys, and what makes an answer stale. The read
path (crm.selectors.recommendations) and the writes that change answers (crm.services) both
use this module, so a key is spelled in one place.

Answers are the API's JSON bodies, cached in Redis per workspace generation and keyed by
customer id. Anything that can change many answers — new lists written, a promoted or
rolled-back version, a product edited or deactivated, an erased or deleted customer — moves the
workspace's generation on, after its transaction commits, so the next read misses and
recomputes from the database. An order changes only its customer's answer (the popularity
fallback leaves out what they bought), so it moves that customer's own stamp instead: a shop
taking orders all day keeps everyone else's answers cached. Old entries are never read again
and expire after RECOMMENDATION_CACHE_SECONDS. While Redis is unreachable every read goes to
the database.
"""

import logging
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from crm.models import Customer, Product
from crm.signals import customer_erased
from marketing_ai import kv
from workers.models import ModelVersion

log = logging.getLogger(__name__)

PREFIX = "mai:recs"
# KEYS: the workspace's generation, the customer's stamp, the workspace's catalogue stamp;
# ARGV[1]: the answer's key without them. Returns {"generation:stamp", body or false, catalogue
# stamp} in one round trip.
LOOKUP = """
local current = (redis.call('GET', KEYS[1]) or '0') .. ':' .. (redis.call('GET', KEYS[2]) or '0')
return {current, redis.call('GET', ARGV[1] .. ':' .. current), redis.call('GET', KEYS[3]) or '0'}
"""
# An order write naming more customers than this (an import) invalidates the whole workspace.
ORDERING_CUSTOMERS_KEPT_APART = 1000


def answer_key(workspace_id: int, customer_id: int, limit: int) -> str:
    """An answer's key, less the generation:stamp that LOOKUP appends."""
    return f"{PREFIX}:{workspace_id}:{customer_id}:{limit}"


def lookup_keys(workspace_id: int, customer_id: int) -> list[str]:
    """LOOKUP's KEYS for one customer's answer."""
    return [
        generation_key(workspace_id),
        stamp_key(workspace_id, customer_id),
        catalogue_key(workspace_id),
    ]


def recommendations_changed(*, workspace_id: int, products: bool = False) -> None:
    """Every cached answer of the workspace is stale once the current transaction commits; with
    `products`, so are the product rows each process keeps (new lists or a promoted version leave
    them standing)."""

    def bump() -> None:
        try:
            with kv.client().pipeline(transaction=False) as pipe:
                pipe.incr(generation_key(workspace_id))
                if products:
                    pipe.incr(catalogue_key(workspace_id))
                pipe.execute()
        except redis.RedisError as exc:
            _not_invalidated(exc)
        else:
            _invalidated()

    transaction.on_commit(bump)


def customers_ordered(*, workspace_id: int, customer_ids: set[int]) -> None:
    """The answers of these customers are stale once the current transaction commits (their
    popular picks leave out what they bought); everyone else's stay cached."""
    if len(customer_ids) > ORDERING_CUSTOMERS_KEPT_APART:  # an import: start the workspace over
        recommendations_changed(workspace_id=workspace_id)
        return

    def stamp() -> None:
        try:
            with kv.client().pipeline(transaction=False) as pipe:
                for customer_id in customer_ids:
                    key = stamp_key(workspace_id, customer_id)
                    pipe.incr(key)
                    # Outlives every entry written under an older stamp, so none is read again.
                    pipe.expire(key, settings.RECOMMENDATION_CACHE_SECONDS + 60)
                pipe.execute()
        except redis.RedisError as exc:
            _not_invalidated(exc)
        else:
            _invalidated()

    if customer_ids:
        transaction.on_commit(stamp)


# The Redis URL this process found nobody listening at, until a write reaches it again: an
# import run before `manage.py up` starts the embedded Redis would otherwise say so per batch.
_unreachable: str | None = None


def _not_invalidated(exc: redis.RedisError) -> None:
    """Reports a write that could not move the cache on: a Redis that is not running (yet) once
    per outage at INFO, since nothing is lost that expiry does not fix; any other failure of a
    running Redis as a warning."""
    global _unreachable
    kv.failed()
    if not isinstance(exc, redis.ConnectionError):
        log.warning("could not invalidate cached recommendations: %s", exc)
        return
    if _unreachable == settings.REDIS_URL:
        log.debug("Redis still not reachable: cached recommendations not invalidated: %s", exc)
        return
    _unreachable = settings.REDIS_URL
    address = urlsplit(settings.REDIS_URL)
    log.info(
        "Redis is not running at %s:%s (yet): no recommendation cache to invalidate now; any "
        "answers it cached before expire within %d s",
        address.hostname,
        address.port or 6379,
        settings.RECOMMENDATION_CACHE_SECONDS,
    )


def _invalidated() -> None:
    global _unreachable
    _unreachable = None


def generation_key(workspace_id: int) -> str:
    return f"{PREFIX}:generation:{workspace_id}"


def catalogue_key(workspace_id: int) -> str:
    return f"{PREFIX}:catalogue:{workspace_id}"


def stamp_key(workspace_id: int, customer_id: int) -> str:
    return f"{PREFIX}:stamp:{workspace_id}:{customer_id}"


def _changed(sender, instance, **kwargs) -> None:
    if sender.__name__ == "ModelVersion" and not instance.family.startswith("recommend."):
        return
    if instance.workspace_id is not None:
        recommendations_changed(workspace_id=instance.workspace_id, products=sender is Product)


def _erased(sender, customer, **kwargs) -> None:
    recommendations_changed(workspace_id=customer.workspace_id)


def connect() -> None:
    """Single-row saves (the admin, the API's single writes) invalidate through signals; bulk
    writes call recommendations_changed themselves."""
    for model in (Product, ModelVersion):
        post_save.connect(_changed, sender=model, dispatch_uid=f"recs.save.{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"recs.delete.{model.__name__}")
    post_delete.connect(_changed, sender=Customer, dispatch_uid="recs.delete.Customer")
    customer_erased.connect(_erased, dispatch_uid="recs.erased")
