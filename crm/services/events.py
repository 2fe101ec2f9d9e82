"""Event writes: append-only, idempotent by idempotency key."""

from typing import Any

from crm import refs
from crm import validation as v
from crm.models import Event, Workspace
from crm.services.refresh import after_behaviour_change
from workers.retry import atomic_with_retry


def _clean_event_row(raw: Any) -> tuple[dict, dict]:
    errors = v.RowErrors()
    if not isinstance(raw, dict):
        errors.add("non_field_errors", "each row must be a JSON object")
        return {}, errors.errors
    allowed = {"customer", "type", "properties", "occurred_at", "idempotency_key"}
    for unknown in sorted(set(raw) - allowed):
        errors.add(unknown, "unknown field")
    for required in ("customer", "type", "occurred_at"):
        if required not in raw:
            errors.add(required, "required")
    row: dict[str, Any] = {}
    if "customer" in raw:
        try:
            row["customer"] = refs.parse(raw["customer"])
        except v.Invalid as exc:
            errors.add("customer", str(exc))
    if "type" in raw:
        row["type"] = errors.take(raw, "type", v.text, max_length=50, required=True)
    if "occurred_at" in raw:
        row["occurred_at"] = errors.take(raw, "occurred_at", v.moment)
    row["properties"] = errors.take(raw, "properties", v.json_object) if "properties" in raw else {}
    row["idempotency_key"] = (
        errors.take(raw, "idempotency_key", v.text, max_length=200) or None
        if "idempotency_key" in raw
        else None
    )
    return row, errors.errors


# A deadlock or serialisation failure re-runs the whole batch (workers.retry).
@atomic_with_retry
def event_bulk_create(*, workspace: Workspace, rows: list) -> v.BatchResult:
    """Appends events. A row whose idempotency key was seen before is counted as unchanged.

    Each row names its customer (`customer`: id, `ext:<source>:<id>` or `email:<address>`);
    an unknown customer rejects the row.
    """
    result = v.BatchResult()
    # Two batches carrying the same idempotency key must not both insert it.
    Workspace.objects.select_for_update().filter(pk=workspace.pk).exists()
    clean: list[tuple[int, dict]] = []
    for index, raw in enumerate(rows):
        row, errors = _clean_event_row(raw)
        if errors:
            result.reject(index, errors)
        else:
            clean.append((index, row))
    customers = refs.resolve(workspace, {row["customer"] for _, row in clean})
    keys = [row["idempotency_key"] for _, row in clean if row["idempotency_key"]]
    seen = dict(
        Event.objects.filter(workspace=workspace, idempotency_key__in=keys).values_list(
            "idempotency_key", "pk"
        )
    )
    to_create: list[tuple[int, Event]] = []
    batch_keys: dict[str, int] = {}
    for index, row in clean:
        customer_id = customers.get(row["customer"])
        if customer_id is None:
            result.reject(index, {"customer": ["no such customer in this workspace"]})
            continue
        key = row["idempotency_key"]
        if key and key in seen:
            result.ids[index] = seen[key]
            result.unchanged += 1
            continue
        if key and key in batch_keys:
            result.unchanged += 1
            continue
        if key:
            batch_keys[key] = index
        event = Event(
            workspace=workspace,
            customer_id=customer_id,
            type=row["type"],
            properties=row["properties"],
            occurred_at=row["occurred_at"],
            idempotency_key=key,
        )
        to_create.append((index, event))
    Event.objects.bulk_create([e for _, e in to_create], batch_size=2000)
    for index, event in to_create:
        result.ids[index] = event.pk
    result.created = len(to_create)
    after_behaviour_change(workspace=workspace, customer_ids={e.customer_id for _, e in to_create})
    return result
