"""Writes to the CRM. Each module holds one entity's services; import them from here."""

from crm.services.customers import consent_set, customer_bulk_upsert
from crm.services.events import event_bulk_create
from crm.services.orders import order_bulk_upsert
from crm.services.products import product_bulk_upsert

__all__ = [
    "consent_set",
    "customer_bulk_upsert",
    "event_bulk_create",
    "order_bulk_upsert",
    "product_bulk_upsert",
]
