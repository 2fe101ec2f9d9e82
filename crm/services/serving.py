"""Recommendations as the API serves them: the JSON body cached in Redis, per workspace generation.

Reading a customer's list the general way takes three queries and most of a request's CPU
(measured in bench/serving.py); a cached body takes one Redis round trip, and an answer not yet
cached one query (the customer and their list together), with the product rows kept in each
process until a product is written (a catalogue stamp beside the generation). Answers are keyed
by customer id, so a reference by e-mail or external id is resolved first and always names the
customer it names now.

Anything that can change many answers — new lists written, a promoted or rolled-back version, a
product edited or deactivated, an erased or deleted customer — moves the workspace's generation
on, after its transaction commits, so the next read misses and recomputes from the database. An
order changes only its customer's answer (the popularity fallback leaves out what they bought), so
it moves that customer's own stamp instead: a shop taking orders all day keeps everyone else's
answers cached. Old entries are never read again and expire after RECOMMENDATION_CACHE_SECONDS.
While Redis is unreachable every read goes to the database.
"""

import functools
import logging
import threading

import orjson
import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.http import Http404

from crm import refs, selectors
from crm.models import Customer, Product, Recommendation, Workspace
from crm.services.privacy import customer_erased
from crm.validation import Invalid
from marketing_ai import kv
from marketing_ai.fastjson import JSONRenderer

log = logging.getLogger(__name__)

PREFIX = "mai:recs"
# KEYS: the workspace's generation, the customer's stamp, the workspace's catalogue stamp;
# ARGV[1]: the answer's key without them. Returns {"generation:stamp", body or false, catalogue
# stamp} in one round trip.
_LOOKUP = """
local current = (redis.call('GET', KEYS[1]) or '0') .. ':' .. (redis.call('GET', KEYS[2]) or '0')
return {current, redis.call('GET', ARGV[1] .. ':' .. current), redis.call('GET', KEYS[3]) or '0'}
"""
_lookup = None
# workspace id -> (catalogue stamp, {product id: row}); bounded, rebuilt when a product changes
_products: dict[int, tuple[bytes, dict[int, dict]]] = {}
PRODUCTS_KEPT = 50_000
CATALOGUE_LOADED_WHOLE = 10_000  # ~50 ms to read once per process and catalogue stamp
_catalogue_lock = threading.Lock()
# An order write naming more customers than this (an import) invalidates the whole workspace.
ORDERING_CUSTOMERS_KEPT_APART = 1000


def recommendations_body(*, workspace: Workspace, ref: str, limit: int) -> bytes:
    """The API's JSON body for `ref`'s recommendations (404 for an unknown customer)."""
    from crm.services.recommendations import recommendations_for

    global _lookup
    try:
        parsed = refs.parse(ref)
    except Invalid:
        raise Http404("no such customer") from None
    pk = parsed[1] if parsed[0] == "id" else refs.resolve(workspace, {parsed}).get(parsed)
    if pk is None:
        raise Http404("no such customer")
    key = f"{PREFIX}:{workspace.pk}:{pk}:{limit}"
    current = catalogue = None  # b"generation:stamp", b"catalogue stamp"
    try:
        if kv.available():
            if _lookup is None or _lookup.registered_client is not kv.client():
                _lookup = kv.client().register_script(_LOOKUP)
            keys = [_generation_key(workspace.pk), _stamp_key(workspace.pk, pk),
                    _catalogue_key(workspace.pk)]  # fmt: skip
            current, body, catalogue = _lookup(keys=keys, args=[key])
            if body:
                return body
    except redis.RedisError as exc:
        kv.failed()
        log.warning("recommendation cache unavailable: %s", exc)
    answer = _answer(workspace, pk, limit, catalogue)
    if answer is None:  # no list of their own: the popularity fallback, the general way
        answer = recommendations_for(
            customer=selectors.customer_get(workspace=workspace, ref=str(pk)), limit=limit
        )
    body = JSONRenderer().render(answer)
    if current is not None:
        try:
            kv.client().set(
                f"{key}:{current.decode()}", body, ex=settings.RECOMMENDATION_CACHE_SECONDS
            )
        except redis.RedisError as exc:
            kv.failed()
            log.warning("recommendation cache unavailable: %s", exc)
    return body


def _answer(workspace: Workspace, pk: int, limit: int, catalogue: bytes | None) -> dict | None:
    """recommendations_for's answer for a customer with a list of their own, in one query; None
    for a customer without one."""
    # Written out: the ORM spent more time building this statement than the database running it.
    with connection.cursor() as cursor:
        cursor.execute(_LIST_SQL(), [pk, workspace.pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404("no such customer")
    products, version = row
    if products is None:
        return None
    products = orjson.loads(products) if isinstance(products, str | bytes) else products
    ids = [pid for pid, _ in products[:limit]]
    rows = _product_rows(workspace.pk, catalogue, ids)
    results = [rows[pid] for pid in ids if pid in rows and rows[pid]["active"]]
    return {"source": "personal", "model_version": version, "results": results}


@functools.cache
def _LIST_SQL() -> str:  # noqa: N802 - a constant, built once the models are ready
    customers, lists = Customer._meta.db_table, Recommendation._meta.db_table
    # Table names from the models; the values are bound as parameters.
    joined = f"{customers} c LEFT JOIN {lists} r ON r.customer_id = c.id"
    where = "c.id = %s AND c.workspace_id = %s AND c.erased_at IS NULL"
    return f"SELECT r.products, r.model_version_id FROM {joined} WHERE {where}"  # noqa: S608


def _product_rows(workspace_id: int, catalogue: bytes | None, ids: list[int]) -> dict:
    """Product rows by id; kept per process while the workspace's catalogue stamp stands (every
    product write moves it on). A catalogue of up to CATALOGUE_LOADED_WHOLE products is read in
    one query when the stamp is new: otherwise the first few hundred answers of each process each
    paid an ORM query for the products not seen yet."""
    kept, rows = _products.get(workspace_id, (None, {}))
    if catalogue is None or kept != catalogue or len(rows) > PRODUCTS_KEPT:
        rows = {}
        if catalogue is not None:
            with _catalogue_lock:  # one thread of the process reads it; the others wait for it
                kept, rows = _products.get(workspace_id, (None, {}))
                if kept != catalogue or len(rows) > PRODUCTS_KEPT:
                    rows = _catalogue(workspace_id)
                    _products[workspace_id] = (catalogue, rows)
    # With the whole catalogue read, only a product deleted since its list was written is missing.
    missing = [pid for pid in ids if pid not in rows]
    if missing:
        query = Product.objects.filter(workspace_id=workspace_id, pk__in=missing)
        rows = {**rows, **{row["id"]: row for row in query.values(*selectors.PRODUCT_VALUES)}}
    if catalogue is not None:
        _products[workspace_id] = (catalogue, rows)
    return rows


def _catalogue(workspace_id: int) -> dict:
    """The workspace's product rows by id if there are at most CATALOGUE_LOADED_WHOLE, else none."""
    query = Product.objects.filter(workspace_id=workspace_id)
    loaded = list(query.values(*selectors.PRODUCT_VALUES)[: CATALOGUE_LOADED_WHOLE + 1])
    return {row["id"]: row for row in loaded} if len(loaded) <= CATALOGUE_LOADED_WHOLE else {}


def recommendations_changed(*, workspace_id: int, products: bool = False) -> None:
    """Every cached answer of the workspace is stale once the current transaction commits; with
    `products`, so are the product rows each process keeps (new lists or a promoted version leave
    them standing)."""

    def bump() -> None:
        try:
            with kv.client().pipeline(transaction=False) as pipe:
                pipe.incr(_generation_key(workspace_id))
                if products:
                    pipe.incr(_catalogue_key(workspace_id))
                pipe.execute()
        except redis.RedisError as exc:
            kv.failed()
            # Entries written before the outage may outlive it until they expire.
            log.warning("could not invalidate cached recommendations: %s", exc)

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
                    key = _stamp_key(workspace_id, customer_id)
                    pipe.incr(key)
                    # Outlives every entry written under an older stamp, so none is read again.
                    pipe.expire(key, settings.RECOMMENDATION_CACHE_SECONDS + 60)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not invalidate cached recommendations: %s", exc)

    if customer_ids:
        transaction.on_commit(stamp)


def _generation_key(workspace_id: int) -> str:
    return f"{PREFIX}:generation:{workspace_id}"


def _catalogue_key(workspace_id: int) -> str:
    return f"{PREFIX}:catalogue:{workspace_id}"


def _stamp_key(workspace_id: int, customer_id: int) -> str:
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
    from workers.models import ModelVersion

    for model in (Product, ModelVersion):
        post_save.connect(_changed, sender=model, dispatch_uid=f"recs.save.{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"recs.delete.{model.__name__}")
    post_delete.connect(_changed, sender=Customer, dispatch_uid="recs.delete.Customer")
    customer_erased.connect(_erased, dispatch_uid="recs.erased")
