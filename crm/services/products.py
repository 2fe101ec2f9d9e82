"""Product writes: bulk upsert by SKU, marking products (in)active."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from crm import validation as v
from crm.models import Product, Workspace
from crm.recommendation_cache import recommendations_changed
from workers.retry import atomic_with_retry

PRODUCT_FIELDS = {
    "name": (v.text, {"max_length": 300, "required": True}),
    "description": (v.text, {"max_length": 20_000}),
    "category": (v.text, {"max_length": 200}),
    "price": (v.money, {}),
    "currency": (v.currency, {}),
    "active": (v.boolean, {}),
}


def _clean_product_row(raw: Any) -> tuple[dict, dict]:
    errors = v.RowErrors()
    if not isinstance(raw, dict):
        errors.add("non_field_errors", "each row must be a JSON object")
        return {}, errors.errors
    for unknown in sorted(set(raw) - set(PRODUCT_FIELDS) - {"sku"}):
        errors.add(unknown, "unknown field")
    row = {"sku": errors.take(raw, "sku", v.text, max_length=64, required=True)}
    for name, (cleaner, kwargs) in PRODUCT_FIELDS.items():
        if name in raw:
            row[name] = errors.take(raw, name, cleaner, **kwargs)
    return row, errors.errors


# A deadlock or serialisation failure re-runs the whole batch (workers.retry).
@atomic_with_retry
def product_bulk_upsert(*, workspace: Workspace, rows: list) -> v.BatchResult:
    """Creates or updates products by SKU; fields a row leaves out are kept.

    A new product needs a name. Returns counts, ids by row index and rejected rows.
    """
    result = v.BatchResult()
    Workspace.objects.select_for_update().filter(pk=workspace.pk).exists()
    clean: dict[str, tuple[list[int], dict]] = {}
    for index, raw in enumerate(rows):
        row, errors = _clean_product_row(raw)
        if errors:
            result.reject(index, errors)
            continue
        indexes, earlier = clean.get(row["sku"], ([], {}))
        clean[row["sku"]] = (indexes + [index], {**earlier, **row})

    current = {p.sku: p for p in Product.objects.filter(workspace=workspace, sku__in=list(clean))}
    to_create, to_update, fields_changed = [], [], set()
    for sku, (indexes, row) in clean.items():
        fields = {k: row[k] for k in PRODUCT_FIELDS if k in row}
        product = current.get(sku)
        if product is None:
            if "name" not in fields:
                for index in indexes:
                    result.reject(index, {"name": ["required for a new product"]})
                continue
            product = Product(workspace=workspace, sku=sku, **fields)
            to_create.append((indexes, product))
            continue
        changed = [k for k, value in fields.items() if getattr(product, k) != value]
        for name in changed:
            setattr(product, name, fields[name])
        fields_changed.update(changed)
        if changed:
            # bulk_update writes the field as it is on the object: auto_now does not run.
            product.updated_at = timezone.now()
            to_update.append(product)
            result.updated += 1
        else:
            result.unchanged += 1
        for index in indexes:
            result.ids[index] = product.pk
    Product.objects.bulk_create([p for _, p in to_create], batch_size=2000)
    for indexes, product in to_create:
        for index in indexes:
            result.ids[index] = product.pk
    result.created = len(to_create)
    if to_update:
        Product.objects.bulk_update(to_update, [*fields_changed, "updated_at"], batch_size=2000)
    if to_create or to_update:
        recommendations_changed(workspace_id=workspace.pk, products=True)
    return result


def products_set_active(*, products: QuerySet[Product], active: bool) -> int:
    """Marks `products` active or inactive in one UPDATE (which sends no signals, so the served
    recommendations are told here); returns how many rows changed."""
    workspaces = set(products.values_list("workspace_id", flat=True).distinct())
    changed = products.update(active=active, updated_at=timezone.now())
    for workspace_id in workspaces:
        recommendations_changed(workspace_id=workspace_id, products=True)
    return changed
