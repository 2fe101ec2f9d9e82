"""Customer writes: bulk upsert with identity merge, single updates, consent changes."""

import functools
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm import bulk, refs
from crm import validation as v
from crm.models import Channel, Consent, Customer, ExternalIdentity, Workspace
from workers.retry import atomic_with_retry

# field -> (cleaner, kwargs); only the fields a row carries are written (partial update).
CUSTOMER_FIELDS = {
    "email": (v.email, {}),
    "phone": (v.text, {"max_length": 32}),
    "first_name": (v.text, {"max_length": 100}),
    "last_name": (v.text, {"max_length": 100}),
    "locale": (v.locale, {}),
    "time_zone": (v.time_zone, {}),
    "country": (v.country, {}),
    "attributes": (v.json_object, {}),
}
WRITABLE = set(CUSTOMER_FIELDS) | {"source", "external_id", "consent"}
CLEANERS = {
    name: functools.partial(cleaner, **kwargs)
    for name, (cleaner, kwargs) in CUSTOMER_FIELDS.items()
}
CHANNELS = frozenset(Channel.values)  # computed once: enum .values builds a new list per call
CONSENT_STATUSES = frozenset(Consent.Status.values)
# What a new customer gets for the fields its row leaves out.
NEW_CUSTOMER_DEFAULTS = {
    "email": None, "phone": "", "first_name": "", "last_name": "", "locale": "", "time_zone": "",
    "country": "", "attributes": {},
}  # fmt: skip


def _clean_customer_row(raw: Any, *, identify: bool = True) -> tuple[dict, dict]:
    """Returns (clean row, errors). With `identify`, the row must name its customer by
    source + external_id, or by email (bulk upserts); without, it only changes fields.

    Runs once per row of 10,000-row batches, hence the plain loops over what the row holds.
    """
    errors = v.RowErrors()
    if not isinstance(raw, dict):
        errors.add("non_field_errors", "each row must be a JSON object")
        return {}, errors.errors
    allowed = WRITABLE if identify else WRITABLE - {"source", "external_id"}
    if not raw.keys() <= allowed:
        for unknown in sorted(raw.keys() - allowed):
            errors.add(unknown, "unknown field")
    row: dict[str, Any] = {}
    for name in raw.keys() & CLEANERS.keys():
        try:
            row[name] = CLEANERS[name](raw[name])
        except v.Invalid as exc:
            errors.add(name, str(exc))
            row[name] = None
    has_source, has_external = "source" in raw, "external_id" in raw
    if has_source or has_external:
        row["source"] = errors.take(raw, "source", v.text, max_length=50, required=True)
        row["external_id"] = errors.take(raw, "external_id", v.text, max_length=200, required=True)
        if has_source != has_external:
            errors.add("source" if has_external else "external_id", "required with the other")
    elif identify and not row.get("email"):
        errors.add("non_field_errors", "identify the customer by source + external_id or email")
    if "consent" in raw:
        row["consent"] = _clean_consent(raw["consent"], errors)
    return row, errors.errors


def _clean_consent(value: Any, errors: v.RowErrors) -> dict[str, dict]:
    """{"email": "subscribed"} or {"email": {"status": ..., "source": ...}} per channel."""
    if not isinstance(value, dict):
        errors.add("consent", 'must be an object such as {"email": "subscribed"}')
        return {}
    clean = {}
    for channel, entry in value.items():
        if channel not in CHANNELS:
            errors.add("consent", f"unknown channel {channel!r}")
            continue
        entry = {"status": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or entry.get("status") not in CONSENT_STATUSES:
            errors.add("consent", f"{channel}: status must be one of {', '.join(Consent.Status)}")
            continue
        clean[channel] = {"status": entry["status"], "source": str(entry.get("source", ""))[:100]}
    return clean


def _key(row: dict) -> tuple:
    if row.get("source"):
        return ("ext", row["source"], row["external_id"])
    return ("email", row["email"])


def _merge(earlier: dict, later: dict) -> dict:
    """Two rows for one customer: the later row's fields win, attributes and consent combine."""
    merged = {**earlier, **later}
    for name in ("attributes", "consent"):
        if name in earlier or name in later:
            merged[name] = {**earlier.get(name, {}), **later.get(name, {})}
    return merged


# A deadlock or serialisation failure re-runs the whole batch (workers.retry).
@atomic_with_retry
def customer_bulk_upsert(*, workspace: Workspace, rows: list, source: str = "api") -> v.BatchResult:
    """Creates or updates customers; returns counts, ids by row index and rejected rows.

    A row is matched by its external identity, else by e-mail (so the same person arriving from
    two systems becomes one customer with two identities). Fields a row leaves out are kept;
    `attributes` are merged. Bad rows are rejected with reasons; the good ones are written in
    this one transaction. Rows for the same customer later in the batch win.
    """
    result = v.BatchResult()
    clean: dict[tuple, dict] = {}  # key -> {"row": ..., "indexes": [...]}
    for index, raw in enumerate(rows):
        row, errors = _clean_customer_row(raw)
        if errors:
            result.reject(index, errors)
            continue
        key = _key(row)
        if key in clean:
            clean[key]["row"] = _merge(clean[key]["row"], row)
            clean[key]["indexes"].append(index)
        else:
            clean[key] = {"row": row, "indexes": [index]}

    # From here on, batches naming the same person (identity or e-mail) take turns, so two
    # never create them twice; batches about different people run side by side.
    bulk.lock_keys(
        f"customer:{workspace.pk}:{key}"
        for item in clean.values()
        for key in (_key(item["row"]), ("email", item["row"].get("email")))
        if key[-1]
    )
    emails = {("email", e["row"]["email"]) for e in clean.values() if e["row"].get("email")}
    by_identity = refs.resolve(workspace, {k for k in clean if k[0] == "ext"})
    by_email = refs.resolve(workspace, emails)

    # One plan entry per customer: rows that turn out to be the same person are merged.
    plan: list[dict] = []
    by_pk: dict[int, dict] = {}
    new_by_email: dict[str, dict] = {}
    for key, item in clean.items():
        row = item["row"]
        pk = by_identity.get(key) if key[0] == "ext" else None
        email_owner = by_email.get(("email", row["email"])) if row.get("email") else None
        if pk is not None and email_owner is not None and email_owner != pk:
            for index in item["indexes"]:
                result.reject(index, {"email": ["already belongs to another customer"]})
            continue
        pk = pk or email_owner
        target = by_pk.get(pk) if pk is not None else new_by_email.get(row.get("email"))
        if target is not None:
            target["row"] = _merge(target["row"], row)
            target["keys"].add(key)
            target["indexes"] += item["indexes"]
            continue
        entry = {"row": row, "pk": pk, "keys": {key}, "indexes": list(item["indexes"])}
        plan.append(entry)
        if pk is not None:
            by_pk[pk] = entry
        elif row.get("email"):
            new_by_email[row["email"]] = entry

    current = Customer.objects.in_bulk(list(by_pk))
    to_create: list[dict] = []
    to_update: list[Customer] = []
    updated_fields: set[str] = set()
    for entry in plan:
        fields = {k: entry["row"][k] for k in CUSTOMER_FIELDS if k in entry["row"]}
        if entry["pk"] is None:
            to_create.append(entry)
            continue
        customer = current[entry["pk"]]
        changed = False
        for name, value in fields.items():
            if name == "attributes":
                value = {**customer.attributes, **value}
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                updated_fields.add(name)
                changed = True
        if changed:
            to_update.append(customer)
            result.updated += 1
        else:
            result.unchanged += 1

    now = timezone.now()
    new_ids = bulk.insert_returning_ids(
        Customer,
        ["workspace", *NEW_CUSTOMER_DEFAULTS, "created_at", "updated_at"],
        [
            (
                workspace.pk,
                *(e["row"].get(k, d) for k, d in NEW_CUSTOMER_DEFAULTS.items()),
                now,
                now,
            )
            for e in to_create
        ],
    )
    for entry, pk in zip(to_create, new_ids, strict=True):
        entry["pk"] = pk
    result.created = len(to_create)
    if to_update:
        for customer in to_update:
            customer.updated_at = now
        Customer.objects.bulk_update(to_update, [*updated_fields, "updated_at"], batch_size=2000)

    identities, consents = [], []
    for entry in plan:
        for index in entry["indexes"]:
            result.ids[index] = entry["pk"]
        for key in entry["keys"]:
            if key[0] == "ext" and key not in by_identity:
                identities.append((workspace.pk, entry["pk"], key[1], key[2], now))
        for channel, consent in entry["row"].get("consent", {}).items():
            consents.append(
                (entry["pk"], channel, consent["status"], consent["source"] or source, now)
            )
    bulk.insert_returning_ids(
        ExternalIdentity,
        ["workspace", "customer", "source", "external_id", "created_at"],
        identities,
        conflict=["workspace", "source", "external_id"],
    )
    bulk.insert_returning_ids(
        Consent,
        ["customer", "channel", "status", "source", "updated_at"],
        consents,
        conflict=["customer", "channel"],
        update=["status", "source", "updated_at"],
    )
    return result


def consent_set(*, customer: Customer, channel: str, status: str, source: str = "") -> Consent:
    """Records the customer's consent for one channel now (unsubscribe links, preference pages)."""
    consent, _ = Consent.objects.update_or_create(
        customer=customer,
        channel=channel,
        defaults={"status": status, "source": source, "updated_at": timezone.now()},
    )
    return consent


@transaction.atomic
def customer_update(*, customer: Customer, data: Any) -> dict[str, list[str]]:
    """Changes the fields `data` carries (and consent); returns field errors, empty when saved."""
    row, errors = _clean_customer_row(data, identify=False)
    if errors:
        return errors
    if "email" in data and row["email"]:
        taken = (
            Customer.objects.filter(workspace_id=customer.workspace_id, email=row["email"])
            .exclude(pk=customer.pk)
            .exists()
        )
        if taken:
            return {"email": ["already belongs to another customer"]}
    for name in CUSTOMER_FIELDS:
        if name in data:
            value = row[name]
            if name == "attributes":
                value = {**customer.attributes, **value}
            setattr(customer, name, value)
    customer.save()
    for channel, consent in row.get("consent", {}).items():
        consent_set(
            customer=customer, channel=channel, status=consent["status"], source=consent["source"]
        )
    return {}
