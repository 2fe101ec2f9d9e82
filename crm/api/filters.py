"""Query-string filters of the list endpoints (invalid values give 400 with field messages)."""

import django_filters as filters
from django import forms

from crm import validation as v
from crm.models import Customer, Event, ExternalIdentity, Order, Product, SegmentMembership


class _Checked(forms.Field):
    """A form field cleaned by one of crm.validation's cleaners (the API's rules for ids and
    moments, not the forms' own: those take "١٢" for 12 and let 9999-12-31T23:59:59-10:00 reach
    the database, where converting it to UTC overflows)."""

    cleaner = staticmethod(lambda value: value)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return self.cleaner(value)
        except v.Invalid as exc:
            raise forms.ValidationError(str(exc)) from None


class _IdField(_Checked):
    cleaner = staticmethod(v.identifier)


class _MomentField(_Checked):
    cleaner = staticmethod(v.moment)


class IdFilter(filters.Filter):
    field_class = _IdField


class MomentFilter(filters.Filter):
    field_class = _MomentField


class CustomerFilter(filters.FilterSet):
    email = filters.CharFilter(method="by_email")
    country = filters.CharFilter(method="by_country")
    # Filters through other tables are subqueries, not joins: no duplicate rows, no DISTINCT.
    source = filters.CharFilter(method="by_source")
    external_id = filters.CharFilter(method="by_external_id")
    updated_since = MomentFilter(field_name="updated_at", lookup_expr="gte")
    created_since = MomentFilter(field_name="created_at", lookup_expr="gte")
    segment = IdFilter(method="by_segment")

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
    customer = IdFilter(field_name="customer_id")
    external_id = filters.CharFilter()
    kind = filters.ChoiceFilter(choices=Order.Kind.choices)
    placed_since = MomentFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = MomentFilter(field_name="placed_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields: list[str] = []


class EventFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    type = filters.CharFilter()
    since = MomentFilter(field_name="occurred_at", lookup_expr="gte")
    before = MomentFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields: list[str] = []
