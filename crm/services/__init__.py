"""Writes to the CRM. Each module holds one entity's services; import them from here."""

from crm.services.apikeys import api_key_create, api_key_revoke
from crm.services.customers import consent_set, customer_bulk_upsert, customer_update
from crm.services.events import event_bulk_create
from crm.services.orders import order_bulk_upsert, order_delete
from crm.services.privacy import privacy_erase, privacy_export
from crm.services.products import product_bulk_upsert, products_set_active

__all__ = [
    "api_key_create",
    "api_key_revoke",
    "consent_set",
    "customer_bulk_upsert",
    "customer_update",
    "event_bulk_create",
    "order_bulk_upsert",
    "order_delete",
    "privacy_erase",
    "privacy_export",
    "product_bulk_upsert",
    "products_set_active",
]
