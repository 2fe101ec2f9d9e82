"""Customer references as integrators write them: an id, `ext:<source>:<id>`, `email:<address>`."""

from collections import defaultdict
from typing import Any

from crm.models import Customer, ExternalIdentity, Workspace
from crm.validation import Invalid


def parse(ref: Any) -> tuple:
    """A hashable key for a reference: ("id", 5), ("ext", source, id) or ("email", address)."""
    if isinstance(ref, bool):
        raise Invalid("not a customer reference")
    if isinstance(ref, int):
        return ("id", ref)
    if isinstance(ref, dict):
        if "source" in ref and "external_id" in ref:
            return ("ext", str(ref["source"]), str(ref["external_id"]))
        if "email" in ref:
            return ("email", str(ref["email"]).strip().lower())
        if "id" in ref:
            return parse(ref["id"])
    if isinstance(ref, str):
        if ref.isdigit():
            return ("id", int(ref))
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
    if emails:
        for pk, address in live.filter(email__any=emails).values_list("pk", "email"):
            found[("email", address)] = pk
    by_source: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        if k[0] == "ext":
            by_source[k[1]].append(k[2])
    for source, external_ids in by_source.items():
        rows = ExternalIdentity.objects.filter(
            workspace=workspace,
            source=source,
            external_id__any=external_ids,
            customer__erased_at__isnull=True,
        ).values_list("external_id", "customer_id")
        for external_id, pk in rows:
            found[("ext", source, external_id)] = pk
    return found
