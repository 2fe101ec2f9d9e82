"""Privacy requests: export everything about a person, or erase them everywhere."""

from django.db import transaction
from django.utils import timezone

from crm import selectors
from crm.models import (
    AuditEntry,
    Consent,
    Customer,
    CustomerScore,
    Event,
    ExternalIdentity,
    Order,
    Recommendation,
    SegmentMembership,
)
from crm.signals import customer_erased


def privacy_export(*, customer: Customer, actor: str) -> dict:
    """Everything about `customer` as JSON-ready data; the request is recorded in the audit log."""
    data = selectors.customer_export(customer=customer)
    AuditEntry.objects.create(
        workspace_id=customer.workspace_id,
        action="privacy.export",
        actor=actor,
        customer_id=customer.pk,
    )
    return data


@transaction.atomic
def privacy_erase(*, customer: Customer, actor: str) -> AuditEntry:
    """Erases a person: their events, identities, consents, scores and segment memberships are
    deleted, their orders kept for sales totals but detached from them, and the customer row
    emptied to a tombstone marked erased (so it never enters training data again). Returns the
    audit entry, which names only the customer id and what was removed.
    """
    counts = {
        "events": Event.objects.filter(customer=customer).delete()[0],
        "identities": ExternalIdentity.objects.filter(customer=customer).delete()[0],
        "consents": Consent.objects.filter(customer=customer).delete()[0],
        "scores": CustomerScore.objects.filter(customer=customer).delete()[0],
        "memberships": SegmentMembership.objects.filter(customer=customer).delete()[0],
        "recommendations": Recommendation.objects.filter(customer=customer).delete()[0],
        "orders_detached": Order.objects.filter(customer=customer).update(customer=None),
    }
    customer_erased.send(sender=Customer, customer=customer, counts=counts)
    Customer.objects.filter(pk=customer.pk).update(
        email=None,
        phone="",
        first_name="",
        last_name="",
        locale="",
        time_zone="",
        country="",
        attributes={},
        erased_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return AuditEntry.objects.create(
        workspace_id=customer.workspace_id,
        action="privacy.erase",
        actor=actor,
        customer_id=customer.pk,
        details=counts,
    )
