"""Recommendations as they are read: a customer's precomputed list (or the active version's
popular picks), and the API's answer, cached (crm.recommendation_cache).

A cached body takes one Redis round trip, and an answer not yet cached one query (the customer
and their list together), with the product rows kept in each process until a product is
written (a catalogue stamp beside the generation); bench/serving.py measures both against the
general way's three queries. Answers are keyed by
customer id, so a reference by e-mail or external id is resolved first and always names the
customer it names now.
"""

import functools
import logging
import threading

import orjson
import redis
from django.conf import settings
from django.db import connection
from django.http import Http404

from crm import recommendation_cache as cache
from crm import refs
from crm.models import Customer, Product, Recommendation, Workspace
from crm.selectors import rising_boost
from crm.selectors.customers import PRODUCT_VALUES, customer_get, purchased_product_ids
from crm.validation import Invalid
from marketing_ai import kv
from marketing_ai.fastjson import JSONRenderer
from workers.models import ModelVersion, in_slot

log = logging.getLogger(__name__)

FAMILY_PREFIX = "recommend."  # every recommender's family: recommend.dlae, recommend.sasrec...

_lookup = None
# workspace id -> (catalogue stamp, {product id: row}); bounded, rebuilt when a product changes
_products: dict[int, tuple[bytes, dict[int, dict]]] = {}
PRODUCTS_KEPT = 50_000
CATALOGUE_LOADED_WHOLE = 10_000  # ~50 ms to read once per process and catalogue stamp
_catalogue_lock = threading.Lock()


def recommendations_for(*, customer: Customer, limit: int = 10, boost: float | None = None) -> dict:
    """The customer's precomputed products, or the active version's most popular ones for a
    customer it has never seen (new customers, no purchases yet) — less what they have bought,
    unless the version allows repeat purchases. `boost` (default: the workspace's
    rising_boost; 0 for none) lifts the products the active forecast has rising; the answer's
    "boost" then says by what weight, under which forecast version, and which products."""
    # The workspace's setting comes with the list (no query of its own on the common path).
    row = Recommendation.objects.filter(customer=customer).select_related("workspace").first()
    if boost is None:
        boost = (row.workspace if row is not None else customer.workspace).rising_boost
    lift = _Lift(customer.workspace_id, boost)
    bought: set[int] = set()
    if row is not None:
        ids = lift.reorder([(pid, score) for pid, score in row.products])[:limit]
        source, version_id = "personal", row.model_version_id
    else:
        # One at most (the database holds one active recommender per workspace).
        version = ModelVersion.objects.filter(
            in_slot(FAMILY_PREFIX),
            workspace_id=customer.workspace_id,
            status=ModelVersion.Status.ACTIVE,
        ).first()
        if version is None:
            return {"source": "none", "model_version": None, "results": []}
        ids = lift.reorder(rising_boost.rank_scores(version.params.get("popular", [])))
        source, version_id = "popular", version.pk
        if not version.params.get("repeat_purchases"):
            bought = set(purchased_product_ids(customer=customer))
    rows = {
        row["id"]: row
        for row in Product.objects.filter(pk__in=ids, active=True).values(*PRODUCT_VALUES)
    }  # one query for the list, in the model's order
    results = [rows[pid] for pid in ids if pid in rows and pid not in bought][:limit]
    return lift.said({"source": source, "model_version": version_id, "results": results})


class _Lift:
    """The rising-product boost of one answer: off (weight 0) costs nothing; on, the active
    forecast's rising products are read once (rising_boost.rising_changes)."""

    def __init__(self, workspace_id: int, weight: float) -> None:
        self.weight = weight
        self.version, self.changes = (
            rising_boost.rising_changes(workspace_id) if weight > 0 else (None, {})
        )
        self.lifted: set[int] = set()

    def key(self) -> str:
        """The cache key's suffix: a boosted answer is another answer, and so is one under a
        newer forecast."""
        return f":boost:{self.weight}:{self.version}" if self.weight > 0 else ""

    def reorder(self, ranked: list[tuple[int, float]]) -> list[int]:
        ids, self.lifted = rising_boost.boosted(ranked, self.changes, self.weight)
        return ids

    def said(self, answer: dict) -> dict:
        if self.weight > 0:
            shown = [row["id"] for row in answer["results"] if row["id"] in self.lifted]
            answer["boost"] = {
                "weight": self.weight,
                "forecast_version": self.version,
                "lifted": shown,
            }
        return answer


def recommendations_body(
    *, workspace: Workspace, ref: str, limit: int, boost: float | None = None
) -> bytes:
    """The API's JSON body for `ref`'s recommendations (404 for an unknown customer); `boost`
    as in recommendations_for (default: the workspace's rising_boost)."""
    global _lookup
    try:
        parsed = refs.parse(ref)
    except Invalid:
        raise Http404("no such customer") from None
    pk = parsed[1] if parsed[0] == "id" else refs.resolve(workspace, {parsed}).get(parsed)
    if pk is None:
        raise Http404("no such customer")
    weight = workspace.rising_boost if boost is None else boost
    lift = _Lift(workspace.pk, weight)
    key = cache.answer_key(workspace.pk, pk, limit) + lift.key()
    current = catalogue = None  # b"generation:stamp", b"catalogue stamp"
    try:
        if kv.available():
            if _lookup is None or _lookup.registered_client is not kv.client():
                _lookup = kv.client().register_script(cache.LOOKUP)
            keys = cache.lookup_keys(workspace.pk, pk)
            current, body, catalogue = _lookup(keys=keys, args=[key])
            if body:
                return body
    except redis.RedisError as exc:
        kv.failed()
        log.warning("recommendation cache unavailable: %s", exc)
    answer = _answer(workspace, pk, limit, catalogue, lift)
    if answer is None:  # no list of their own: the popularity fallback, the general way
        answer = recommendations_for(
            customer=customer_get(workspace=workspace, ref=str(pk)), limit=limit, boost=weight
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


def _answer(
    workspace: Workspace, pk: int, limit: int, catalogue: bytes | None, lift: "_Lift"
) -> dict | None:
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
    ids = lift.reorder(products)[:limit]
    rows = _product_rows(workspace.pk, catalogue, ids)
    results = [rows[pid] for pid in ids if pid in rows and rows[pid]["active"]]
    return lift.said({"source": "personal", "model_version": version, "results": results})


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
        rows = {**rows, **{row["id"]: row for row in query.values(*PRODUCT_VALUES)}}
    if catalogue is not None:
        _products[workspace_id] = (catalogue, rows)
    return rows


def _catalogue(workspace_id: int) -> dict:
    """The workspace's product rows by id if there are at most CATALOGUE_LOADED_WHOLE, else none."""
    query = Product.objects.filter(workspace_id=workspace_id)
    loaded = list(query.values(*PRODUCT_VALUES)[: CATALOGUE_LOADED_WHOLE + 1])
    return {row["id"]: row for row in loaded} if len(loaded) <= CATALOGUE_LOADED_WHOLE else {}
