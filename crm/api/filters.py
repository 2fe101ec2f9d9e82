"""Query-string filters of the list endpoints (invalid values give 400 with field messages)."""

import django_filters as filters

from crm.models import Customer, Event, Order, Product


class CustomerFilter(filters.FilterSet):
    email = filters.CharFilter(method="by_email")
    country = filters.CharFilter(method="by_country")
    source = filters.CharFilter(field_name="identities__source")
    external_id = filters.CharFilter(field_name="identities__external_id")
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    created_since = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    segment = filters.NumberFilter(field_name="memberships__segment_id")

    class Meta:
        model = Customer
        fields: list[str] = []

    def by_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def by_country(self, queryset, name, value):
        return queryset.filter(country=value.strip().upper())


class ProductFilter(filters.FilterSet):
    sku = filters.CharFilter()
    category = filters.CharFilter()
    active = filters.BooleanFilter()
    q = filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Product
        fields: list[str] = []


class OrderFilter(filters.FilterSet):
    customer = filters.NumberFilter(field_name="customer_id")
    external_id = filters.CharFilter()
    kind = filters.ChoiceFilter(choices=Order.Kind.choices)
    placed_since = filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields: list[str] = []


class EventFilter(filters.FilterSet):
    customer = filters.NumberFilter(field_name="customer_id")
    type = filters.CharFilter()
    since = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    before = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields: list[str] = []
