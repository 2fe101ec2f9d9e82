"""Customer references as integrators write them: an id, `ext:<source>:<id>`, `email:<address>`."""

from collections import defaultdict
from typing import Any

from django.db import connection

from crm import bulk
from crm.models import Customer, ExternalIdentity, Workspace
from crm.validation import NUL, Invalid, identifier


def parse(ref: Any) -> tuple:
    """A hashable key for a reference: ("id", 5), ("ext", source, id) or ("email", address).

    Raises Invalid for anything no customer could have: ids beyond bigint or written in other
    scripts' digits ("²", "١٢"), NUL characters (which PostgreSQL refuses in a query)."""
    key = _parse(ref)
    if any(isinstance(part, str) and NUL in part for part in key):
        raise Invalid("may not contain NUL (\\u0000) characters")
    return key


def _parse(ref: Any) -> tuple:
    if isinstance(ref, bool):
        raise Invalid("not a customer reference")
    if isinstance(ref, int):
        return ("id", identifier(ref))
    if isinstance(ref, dict):
        if "source" in ref and "external_id" in ref:
            return ("ext", str(ref["source"]), str(ref["external_id"]))
        if "email" in ref:
            return ("email", str(ref["email"]).strip().lower())
        if "id" in ref:
            return _parse(ref["id"])
    if isinstance(ref, str):
        if ref.isdigit():  # any script's digits: identifier() takes ASCII ones only
            return ("id", identifier(ref))
        if ref.startswith("ext:") and ref.count(":") >= 2:
            _, source, external_id = ref.split(":", 2)
            if source and external_id:
                return ("ext", source, external_id)
        if ref.startswith("email:") and "@" in ref:
            return ("email", ref[len("email:") :].strip().lower())
    raise Invalid("use a customer id, 'ext:<source>:<external id>' or 'email:<address>'")


def resolve(workspace: Workspace, keys: set[tuple]) -> dict[tuple, int]:
    """Maps parsed references to customer ids in `workspace` (unknown ones are left out).

    One query per kind of reference and source, however many references there are. Erased
    customers are never found: nothing new may attach to them.
    """
    found: dict[tuple, int] = {}
    live = Customer.objects.filter(workspace=workspace, erased_at__isnull=True)
    ids = [k[1] for k in keys if k[0] == "id"]
    if ids:
        for pk in live.filter(pk__in=ids).values_list("pk", flat=True):
            found[("id", pk)] = pk
    emails = [k[1] for k in keys if k[0] == "email"]
    if emails and connection.vendor == "postgresql":
        # Batches send up to 10,000 references: one statement with one binary array, no ORM
        # query building per batch (where much of a bulk upsert's time went).
        rows = bulk.execute_bound(
            "SELECT id, email FROM crm_customer WHERE workspace_id = %s "
            "AND erased_at IS NULL AND email = ANY(%b::text[])",
            [workspace.pk, emails],
            fetch=True,
        )
        for pk, address in rows:
            found[("email", address)] = pk
    elif emails:
        for pk, address in live.filter(email__any=emails).values_list("pk", "email"):
            found[("email", address)] = pk
    by_source: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        if k[0] == "ext":
            by_source[k[1]].append(k[2])
    for source, external_ids in by_source.items():
        if connection.vendor == "postgresql":
            rows = bulk.execute_bound(
                "SELECT i.external_id, i.customer_id FROM crm_externalidentity i "
                "JOIN crm_customer c ON c.id = i.customer_id WHERE i.workspace_id = %s "
                "AND i.source = %s AND i.external_id = ANY(%b::text[]) AND c.erased_at IS NULL",
                [workspace.pk, source, external_ids],
                fetch=True,
            )
            for external_id, pk in rows:
                found[("ext", source, external_id)] = pk
            continue
        rows = ExternalIdentity.objects.filter(
            workspace=workspace,
            source=source,
            external_id__any=external_ids,
            customer__erased_at__isnull=True,
        ).values_list("external_id", "customer_id")
        for external_id, pk in rows:
            found[("ext", source, external_id)] = pk
    return found
