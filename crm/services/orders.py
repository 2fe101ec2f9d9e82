"""Order writes: bulk upsert by external id, lines replaced whole, a purchase event per order."""

from decimal import Decimal
from typing import Any

from django.db import transaction

from crm import refs
from crm import validation as v
from crm.models import Event, Order, OrderLine, Product, Workspace
from crm.recommendation_cache import customers_ordered
from crm.services.refresh import after_behaviour_change
from workers.retry import atomic_with_retry


def _clean_line(raw: Any, position: int, errors: v.RowErrors) -> dict | None:
    name = f"lines[{position}]"
    if not isinstance(raw, dict):
        errors.add(name, "must be an object with sku, quantity and unit_price")
        return None
    line = {}
    for field, cleaner, kwargs in (
        ("sku", v.text, {"max_length": 64, "required": True}),
        ("quantity", v.integer, {}),
        ("unit_price", v.money, {}),
    ):
        if field not in raw:
            errors.add(f"{name}.{field}", "required")
            continue
        line[field] = errors.take(raw, field, cleaner, **kwargs)
        if f"{field}" in errors.errors:  # re-file under the line's own name
            errors.errors[f"{name}.{field}"] = errors.errors.pop(field)
    # A field that failed left None behind: the line is unusable (a return would negate it).
    return line if len(line) == 3 and None not in line.values() else None


def _clean_order_row(raw: Any) -> tuple[dict, dict]:
    errors = v.RowErrors()
    if not isinstance(raw, dict):
        errors.add("non_field_errors", "each row must be a JSON object")
        return {}, errors.errors
    allowed = {
        "external_id",
        "customer",
        "kind",
        "status",
        "placed_at",
        "cancelled_at",
        "currency",
        "lines",
    }
    for unknown in sorted(set(raw) - allowed):
        errors.add(unknown, "unknown field")
    for required in ("external_id", "placed_at", "lines"):
        if required not in raw:
            errors.add(required, "required")
    row: dict[str, Any] = {
        "external_id": errors.take(raw, "external_id", v.text, max_length=100, required=True)
        if "external_id" in raw
        else None,
        "kind": errors.take(raw, "kind", v.choice, Order.Kind.values)
        if "kind" in raw
        else Order.Kind.ORDER,
        "status": errors.take(raw, "status", v.choice, Order.Status.values)
        if "status" in raw
        else Order.Status.PLACED,
        "placed_at": errors.take(raw, "placed_at", v.moment) if "placed_at" in raw else None,
        "cancelled_at": errors.take(raw, "cancelled_at", v.moment)
        if raw.get("cancelled_at")
        else None,
        "currency": errors.take(raw, "currency", v.currency) if "currency" in raw else "GBP",
        "customer": None,
    }
    if raw.get("customer") is not None:
        try:
            row["customer"] = refs.parse(raw["customer"])
        except v.Invalid as exc:
            errors.add("customer", str(exc))
    lines = raw.get("lines")
    if "lines" in raw and (not isinstance(lines, list) or not lines):
        errors.add("lines", "must be a non-empty list")
    elif isinstance(lines, list):
        row["lines"] = [_clean_line(line, i, errors) for i, line in enumerate(lines)]
    if row["kind"] == Order.Kind.RETURN and isinstance(row.get("lines"), list):
        # A return's quantities are negative whichever way the sender wrote them.
        for line in row["lines"]:
            if line:
                line["quantity"] = -abs(line["quantity"])
    return row, errors.errors


# A deadlock or serialisation failure re-runs the whole batch (workers.retry).
@atomic_with_retry
def order_bulk_upsert(*, workspace: Workspace, rows: list) -> v.BatchResult:
    """Creates or replaces orders by external id; returns counts, ids and rejected rows.

    Lines name products by SKU (an unknown SKU rejects the row); an order's total is the sum of
    its lines. A new order of kind "order" with a customer also appends a `purchase` event.
    """
    result = v.BatchResult()
    Workspace.objects.select_for_update().filter(pk=workspace.pk).exists()
    clean: dict[str, tuple[list[int], dict]] = {}
    for index, raw in enumerate(rows):
        row, errors = _clean_order_row(raw)
        if errors:
            result.reject(index, errors)
            continue
        indexes, _ = clean.get(row["external_id"], ([], None))
        clean[row["external_id"]] = (indexes + [index], row)

    customers = refs.resolve(workspace, {r["customer"] for _, r in clean.values() if r["customer"]})
    skus = {line["sku"] for _, r in clean.values() for line in r["lines"]}
    products = dict(
        Product.objects.filter(workspace=workspace, sku__in=skus).values_list("sku", "pk")
    )
    current = {
        o.external_id: o for o in Order.objects.filter(workspace=workspace, external_id__in=clean)
    }
    accepted: list[tuple[list[int], dict, Order]] = []
    for external_id, (indexes, row) in clean.items():
        problems = {}
        if row["customer"] and row["customer"] not in customers:
            problems["customer"] = ["no such customer in this workspace"]
        unknown = sorted({line["sku"] for line in row["lines"]} - set(products))
        if unknown:
            problems["lines"] = [f"unknown sku: {', '.join(unknown[:5])}"]
        if problems:
            for index in indexes:
                result.reject(index, problems)
            continue
        total = sum((line["quantity"] * line["unit_price"] for line in row["lines"]), Decimal(0))
        fields = {
            "customer_id": customers.get(row["customer"]) if row["customer"] else None,
            "kind": row["kind"],
            "status": row["status"],
            "placed_at": row["placed_at"],
            "cancelled_at": row["cancelled_at"],
            "currency": row["currency"],
            "total": total,
        }
        order = current.get(external_id)
        if order is None:
            order = Order(workspace=workspace, external_id=external_id, **fields)
        else:
            for name, value in fields.items():
                setattr(order, name, value)
        accepted.append((indexes, row, order))

    new = [o for _, _, o in accepted if o.pk is None]
    old = [o for _, _, o in accepted if o.pk is not None]
    Order.objects.bulk_create(new, batch_size=2000)
    if old:
        Order.objects.bulk_update(
            old,
            ["customer_id", "kind", "status", "placed_at", "cancelled_at", "currency", "total"],
            batch_size=2000,
        )
        OrderLine.objects.filter(order__in=old).delete()
    result.created, result.updated = len(new), len(old)
    lines, events = [], []
    for indexes, row, order in accepted:
        for index in indexes:
            result.ids[index] = order.pk
        for line in row["lines"]:
            lines.append(
                OrderLine(
                    order=order,
                    product_id=products[line["sku"]],
                    quantity=line["quantity"],
                    unit_price=line["unit_price"],
                    amount=line["quantity"] * line["unit_price"],
                )
            )
        if order in new and order.customer_id and order.kind == Order.Kind.ORDER:
            events.append(purchase_event(order, len(row["lines"])))
    OrderLine.objects.bulk_create(lines, batch_size=5000)
    Event.objects.bulk_create(events, batch_size=2000, ignore_conflicts=True)
    customer_ids = {o.customer_id for _, _, o in accepted if o.customer_id}
    after_behaviour_change(workspace=workspace, customer_ids=customer_ids)
    customers_ordered(workspace_id=workspace.pk, customer_ids=customer_ids)
    return result


@transaction.atomic
def order_delete(*, order: Order) -> None:
    """Deletes `order` with its lines. Like an order write, it changes what its customer has
    bought: their cached recommendations (popular picks leave bought products out) and their
    rule-segment memberships are refreshed once the delete commits. The order's purchase event
    stays on the timeline (events are append-only)."""
    customer_ids = {order.customer_id} if order.customer_id else set()
    workspace = order.workspace
    order.delete()
    after_behaviour_change(workspace=workspace, customer_ids=customer_ids)
    customers_ordered(workspace_id=workspace.pk, customer_ids=customer_ids)


def purchase_event(order: Order, line_count: int) -> Event:
    """The `purchase` event that stands for an order on the customer's timeline."""
    return Event(
        workspace_id=order.workspace_id,
        customer_id=order.customer_id,
        type="purchase",
        occurred_at=order.placed_at,
        properties={
            "order_id": order.pk,
            "external_id": order.external_id,
            "total": str(order.total),
            "currency": order.currency,
            "lines": line_count,
        },
        idempotency_key=f"order:{order.external_id}",
    )
