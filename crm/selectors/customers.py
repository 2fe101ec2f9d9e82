"""Reads about customers and what they did: profiles, orders, products, events, timelines,
privacy exports and the purchase history models train on, shaped as plain dicts."""

from collections import defaultdict
from collections.abc import Callable

from django.http import Http404

from crm import refs
from crm.models import (
    Consent,
    Customer,
    CustomerScore,
    Event,
    ExternalIdentity,
    Order,
    OrderLine,
    Product,
    SegmentMembership,
    Workspace,
)
from crm.selectors import reasons
from crm.validation import Invalid

CUSTOMER_VALUES = ("id", "email", "phone", "first_name", "last_name", "locale", "time_zone",
                   "country", "attributes", "created_at", "updated_at")  # fmt: skip
PRODUCT_VALUES = ("id", "sku", "name", "description", "category", "price", "currency", "active",
                  "created_at", "updated_at")  # fmt: skip
ORDER_VALUES = ("id", "external_id", "customer_id", "kind", "status", "placed_at", "cancelled_at",
                "currency", "total", "created_at")  # fmt: skip
EVENT_VALUES = ("id", "customer_id", "type", "properties", "occurred_at", "idempotency_key",
                "created_at")  # fmt: skip


def customer_get(*, workspace: Workspace, ref: str) -> Customer:
    """The live customer `ref` names in `workspace` (id, ext:<source>:<id>, email:<address>)."""
    try:
        key = refs.parse(ref)
    except Invalid:
        raise Http404("no such customer") from None
    live = Customer.objects.filter(workspace=workspace, erased_at__isnull=True)
    if key[0] == "id":  # the common case: one query
        customer = live.filter(pk=key[1]).first()
    else:
        pk = refs.resolve(workspace, {key}).get(key)
        customer = None if pk is None else live.filter(pk=pk).first()
    if customer is None:
        raise Http404("no such customer")
    return customer


def customers_shape(rows: list[dict]) -> list[dict]:
    """Adds identities and consent to customer rows from `.values(*CUSTOMER_VALUES)`."""
    ids = [row["id"] for row in rows]
    identities: dict[int, list[dict]] = defaultdict(list)
    for customer_id, source, external_id in ExternalIdentity.objects.filter(
        customer_id__in=ids
    ).values_list("customer_id", "source", "external_id"):
        identities[customer_id].append({"source": source, "external_id": external_id})
    consents: dict[int, dict] = defaultdict(dict)
    for c in Consent.objects.filter(customer_id__in=ids).values(
        "customer_id", "channel", "status", "source", "updated_at"
    ):
        consents[c.pop("customer_id")][c.pop("channel")] = c
    for row in rows:
        row["identities"] = identities[row["id"]]
        row["consent"] = consents[row["id"]]
    return rows


def customer_data(customer_id: int) -> dict:
    return customers_shape([Customer.objects.values(*CUSTOMER_VALUES).get(pk=customer_id)])[0]


def orders_shape(rows: list[dict]) -> list[dict]:
    """Adds lines (sku, name, quantity, prices) to order rows from `.values(*ORDER_VALUES)`."""
    lines: dict[int, list[dict]] = defaultdict(list)
    for line in OrderLine.objects.filter(order_id__in=[r["id"] for r in rows]).values(
        "order_id", "product__sku", "product__name", "quantity", "unit_price", "amount"
    ):
        order_id = line.pop("order_id")
        line["sku"] = line.pop("product__sku")
        line["name"] = line.pop("product__name")
        lines[order_id].append(line)
    for row in rows:
        row["lines"] = lines[row["id"]]
    return rows


def order_data(order_id: int) -> dict:
    return orders_shape([Order.objects.values(*ORDER_VALUES).get(pk=order_id)])[0]


def product_data(product_id: int) -> dict:
    return Product.objects.values(*PRODUCT_VALUES).get(pk=product_id)


def event_data(event_id: int) -> dict:
    return Event.objects.values(*EVENT_VALUES).get(pk=event_id)


# Apps that keep their own data about a person (campaigns: the messages sent to them) add it
# here in their AppConfig.ready(), so exports and the timeline cover it without crm importing them.
EXPORT_SECTIONS: dict[str, Callable[[Customer], list]] = {}
TIMELINE_SOURCES: list[Callable[[Customer, int], list[dict]]] = []


def _score_words(score: dict) -> dict:
    return {"kind": score["kind"], "value": score["value"], "reasons": score["reasons"]}


def customer_timeline(*, customer: Customer, limit: int = 200) -> list[dict]:
    """The customer's history, newest first: orders, events (purchases appear as orders) and
    model scores with their reasons. Each item has `at`, `kind` and its own fields."""
    items: list[dict] = []
    orders = list(
        Order.objects.filter(customer=customer).order_by("-placed_at").values(*ORDER_VALUES)[:limit]
    )
    for order in orders_shape(orders):
        items.append({"at": order["placed_at"], "kind": order["kind"], **order})
    events = (
        Event.objects.filter(customer=customer)
        .exclude(type="purchase")
        .order_by("-occurred_at")
        .values(*EVENT_VALUES)[:limit]
    )
    for event in events:
        items.append({"at": event["occurred_at"], "kind": "event", **event})
    for score in CustomerScore.objects.filter(customer=customer).values(
        "kind", "value", "reasons", "computed_at", "model_version_id"
    ):
        items.append(
            {
                "at": score["computed_at"],
                **score,
                "explanation": reasons.explanation(**_score_words(score)),
                "score": score["kind"],
                "kind": "score",
            }
        )
    for source in TIMELINE_SOURCES:
        items.extend(source(customer, limit))
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


def customer_export(*, customer: Customer) -> dict:
    """Everything stored about one person, as JSON-ready data (privacy access requests)."""
    orders = list(Order.objects.filter(customer=customer).values(*ORDER_VALUES))
    return {
        "customer": customer_data(customer.pk),
        "orders": orders_shape(orders),
        "events": list(Event.objects.filter(customer=customer).values(*EVENT_VALUES)),
        "scores": [
            {**score, "explanation": reasons.explanation(**_score_words(score))}
            for score in CustomerScore.objects.filter(customer=customer).values(
                "kind", "value", "reasons", "computed_at"
            )
        ],
        "segments": list(
            SegmentMembership.objects.filter(customer=customer).values(
                "segment_id", "segment__name", "added_at"
            )
        ),
        **{name: section(customer) for name, section in EXPORT_SECTIONS.items()},
    }


def purchase_history(*, workspace: Workspace) -> list[tuple[int, int, int, object]]:
    """(customer id, product id, quantity, placed_at) of every purchased line of live customers.

    What model training reads: returns, guest orders and erased customers never appear, so a
    person who asked to be erased is in no later model version's training data.
    """
    return list(
        OrderLine.objects.filter(
            order__workspace=workspace,
            order__kind=Order.Kind.ORDER,
            quantity__gt=0,
            order__customer__isnull=False,
            order__customer__erased_at__isnull=True,
        )
        .order_by("order__placed_at", "id")
        .values_list("order__customer_id", "product_id", "quantity", "order__placed_at")
    )


def purchased_product_ids(*, customer: Customer) -> list[int]:
    return list(
        OrderLine.objects.filter(order__customer=customer, order__kind=Order.Kind.ORDER)
        .values_list("product_id", flat=True)
        .distinct()
    )
