"""Query-string filters of the list endpoints (invalid values give 400 with field messages)."""

import django_filters as filters

from crm.models import Customer, Event, ExternalIdentity, Order, Product, SegmentMembership


class CustomerFilter(filters.FilterSet):
    email = filters.CharFilter(method="by_email")
    country = filters.CharFilter(method="by_country")
    # Filters through other tables are subqueries, not joins: no duplicate rows, no DISTINCT.
    source = filters.CharFilter(method="by_source")
    external_id = filters.CharFilter(method="by_external_id")
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    created_since = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    segment = filters.NumberFilter(method="by_segment")

    class Meta:
        model = Customer
        fields: list[str] = []

    def by_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def by_country(self, queryset, name, value):
        return queryset.filter(country=value.strip().upper())

    def by_source(self, queryset, name, value):
        return queryset.filter(
            pk__in=ExternalIdentity.objects.filter(source=value).values("customer_id")
        )

    def by_external_id(self, queryset, name, value):
        ids = ExternalIdentity.objects.filter(external_id=value)
        if self.data.get("source"):
            ids = ids.filter(source=self.data["source"])
        return queryset.filter(pk__in=ids.values("customer_id"))

    def by_segment(self, queryset, name, value):
        members = SegmentMembership.objects.filter(segment_id=value)
        return queryset.filter(pk__in=members.values("customer_id"))


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
