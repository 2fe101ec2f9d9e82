"""Reads of a workspace's catalogue for pickers: products found as staff type."""

from django.db.models import Case, IntegerField, Q, Value, When

from crm.models import Product

PICK_PAGE = 20


def product_pick(*, workspace_id: int, term: str, page: int = 1) -> dict:
    """The workspace's active products whose SKU starts with `term` or whose name contains it
    (case-insensitive; an empty term lists them all), SKU matches first, then by name; page
    `page` of PICK_PAGE. Returns {"results": [{"id": sku, "text": "SKU — name"}],
    "pagination": {"more": bool}}, the shape the admin's select2 autocomplete reads."""
    rows = Product.objects.filter(workspace_id=workspace_id, active=True)
    term = term.strip()
    if term:
        rows = rows.filter(Q(sku__istartswith=term) | Q(name__icontains=term)).annotate(
            by_sku=Case(
                When(sku__istartswith=term, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        rows = rows.order_by("by_sku", "name", "pk")
    else:
        rows = rows.order_by("name", "pk")
    start = (page - 1) * PICK_PAGE
    found = list(rows.values_list("sku", "name")[start : start + PICK_PAGE + 1])
    return {
        "results": [{"id": sku, "text": f"{sku} — {name}"} for sku, name in found[:PICK_PAGE]],
        "pagination": {"more": len(found) > PICK_PAGE},
    }


def product_labels(*, workspace_id: int, skus: list[str]) -> dict[str, str]:
    """{sku: "SKU — name"} for those of `skus` in the workspace's catalogue."""
    rows = Product.objects.filter(workspace_id=workspace_id, sku__in=skus)
    return {sku: f"{sku} — {name}" for sku, name in rows.values_list("sku", "name")}
