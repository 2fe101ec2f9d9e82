"""Recommendations as the API serves them: the JSON body cached in Redis, per workspace generation.

Reading a customer's list from the database takes three queries and most of a request's CPU
(measured in bench/serving.py); a cached body takes one Redis round trip. Anything that can
change an answer — new lists written, a promoted or rolled-back version, a product edited or
deactivated, an order (the popularity fallback leaves out what the customer bought), an erased
or deleted customer — moves the workspace's generation on, after its transaction commits, so
the next read misses and recomputes from the database. Old entries are never read again and
expire after RECOMMENDATION_CACHE_SECONDS. While Redis is unreachable every read goes to the
database.
"""

import logging

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from crm import selectors
from crm.models import Customer, Product, Workspace
from crm.services.privacy import customer_erased
from marketing_ai import kv
from marketing_ai.fastjson import JSONRenderer

log = logging.getLogger(__name__)

PREFIX = "mai:recs"
# KEYS[1]: the workspace's generation; ARGV[1]: the answer's key without it.
# Returns {generation, body or false} in one round trip.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. ':' .. generation)}
"""
_lookup = None


def recommendations_body(*, workspace: Workspace, ref: str, limit: int) -> bytes:
    """The API's JSON body for `ref`'s recommendations (404 for an unknown customer)."""
    from crm.services.recommendations import recommendations_for

    global _lookup
    key = f"{PREFIX}:{workspace.pk}:{ref}:{limit}"
    generation = None
    try:
        if _lookup is None or _lookup.registered_client is not kv.client():
            _lookup = kv.client().register_script(_LOOKUP)
        generation, body = _lookup(keys=[_generation_key(workspace.pk)], args=[key])
        if body:
            return body
    except redis.RedisError as exc:
        log.warning("recommendation cache unavailable: %s", exc)
    customer = selectors.customer_get(workspace=workspace, ref=ref)
    body = JSONRenderer().render(recommendations_for(customer=customer, limit=limit))
    if generation is not None:
        try:
            kv.client().set(
                f"{key}:{generation.decode()}", body, ex=settings.RECOMMENDATION_CACHE_SECONDS
            )
        except redis.RedisError as exc:
            log.warning("recommendation cache unavailable: %s", exc)
    return body


def recommendations_changed(*, workspace_id: int) -> None:
    """Every cached answer of the workspace is stale once the current transaction commits."""

    def bump() -> None:
        try:
            kv.client().incr(_generation_key(workspace_id))
        except redis.RedisError as exc:
            # Entries written before the outage may outlive it until they expire.
            log.warning("could not invalidate cached recommendations: %s", exc)

    transaction.on_commit(bump)


def _generation_key(workspace_id: int) -> str:
    return f"{PREFIX}:generation:{workspace_id}"


def _changed(sender, instance, **kwargs) -> None:
    if sender.__name__ == "ModelVersion" and not instance.family.startswith("recommend."):
        return
    if instance.workspace_id is not None:
        recommendations_changed(workspace_id=instance.workspace_id)


def _erased(sender, customer, **kwargs) -> None:
    recommendations_changed(workspace_id=customer.workspace_id)


def connect() -> None:
    """Single-row saves (the admin, the API's single writes) invalidate through signals; bulk
    writes call recommendations_changed themselves."""
    from workers.models import ModelVersion

    for model in (Product, ModelVersion):
        post_save.connect(_changed, sender=model, dispatch_uid=f"recs.save.{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"recs.delete.{model.__name__}")
    post_delete.connect(_changed, sender=Customer, dispatch_uid="recs.delete.Customer")
    customer_erased.connect(_erased, dispatch_uid="recs.erased")
