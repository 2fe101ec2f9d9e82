"""Reads from the CRM, shaped as plain data for the API, the admin, privacy export and model
training. Each module holds one subject's reads; import them from here."""

from crm.selectors.customers import (
    CUSTOMER_VALUES,
    EVENT_VALUES,
    EXPORT_SECTIONS,
    ORDER_VALUES,
    PRODUCT_VALUES,
    TIMELINE_SOURCES,
    customer_data,
    customer_export,
    customer_get,
    customer_timeline,
    customers_shape,
    event_data,
    order_data,
    orders_shape,
    product_data,
    purchase_history,
    purchased_product_ids,
)
from crm.selectors.recommendations import recommendations_body, recommendations_for

__all__ = [
    "CUSTOMER_VALUES",
    "EVENT_VALUES",
    "EXPORT_SECTIONS",
    "ORDER_VALUES",
    "PRODUCT_VALUES",
    "TIMELINE_SOURCES",
    "customer_data",
    "customer_export",
    "customer_get",
    "customer_timeline",
    "customers_shape",
    "event_data",
    "order_data",
    "orders_shape",
    "product_data",
    "purchase_history",
    "purchased_product_ids",
    "recommendations_body",
    "recommendations_for",
]
