"""OpenAPI shapes of the CRM API's bodies. Documentation only: rows are validated by the services
(crm.validation), which are faster than serializers on 10,000-row batches and report per row."""

from drf_spectacular.utils import OpenApiExample, inline_serializer
from rest_framework import serializers as s

from crm.models import Channel, Consent, Order

CONSENT = s.DictField(
    child=s.ChoiceField(choices=Consent.Status.choices),
    required=False,
    help_text=f"per channel ({', '.join(Channel.values)}): subscribed, unsubscribed, bounced, "
    "complained",
)

CustomerRow = inline_serializer(
    "CustomerRow",
    {
        "source": s.CharField(required=False, help_text="the system external_id comes from"),
        "external_id": s.CharField(required=False),
        "email": s.EmailField(required=False, help_text="matched case-insensitively"),
        "phone": s.CharField(required=False),
        "first_name": s.CharField(required=False),
        "last_name": s.CharField(required=False),
        "locale": s.CharField(required=False, help_text="e.g. en-GB"),
        "time_zone": s.CharField(required=False, help_text="IANA name, e.g. Europe/London"),
        "country": s.CharField(required=False, help_text="ISO 3166-1 alpha-2"),
        "attributes": s.DictField(required=False, help_text="custom fields; merged on update"),
        "consent": CONSENT,
    },
)

Customer = inline_serializer(
    "Customer",
    {
        "id": s.IntegerField(),
        "email": s.EmailField(allow_null=True),
        "phone": s.CharField(),
        "first_name": s.CharField(),
        "last_name": s.CharField(),
        "locale": s.CharField(),
        "time_zone": s.CharField(),
        "country": s.CharField(),
        "attributes": s.DictField(),
        "created_at": s.DateTimeField(),
        "updated_at": s.DateTimeField(),
        "identities": s.ListField(child=s.DictField(), required=False),
        "consent": s.DictField(required=False),
    },
)

ProductRow = inline_serializer(
    "ProductRow",
    {
        "sku": s.CharField(),
        "name": s.CharField(required=False, help_text="required for a new product"),
        "description": s.CharField(required=False),
        "category": s.CharField(required=False),
        "price": s.DecimalField(max_digits=12, decimal_places=2, required=False),
        "currency": s.CharField(required=False, help_text="ISO 4217, default GBP"),
        "active": s.BooleanField(required=False),
    },
)

OrderRow = inline_serializer(
    "OrderRow",
    {
        "external_id": s.CharField(),
        "customer": s.CharField(
            required=False, help_text="id, ext:<source>:<id> or email:<address>; none for guests"
        ),
        "kind": s.ChoiceField(choices=Order.Kind.choices, required=False),
        "status": s.ChoiceField(choices=Order.Status.choices, required=False),
        "placed_at": s.DateTimeField(),
        "cancelled_at": s.DateTimeField(required=False),
        "currency": s.CharField(required=False),
        "lines": inline_serializer(
            "OrderLineRow",
            {
                "sku": s.CharField(),
                "quantity": s.IntegerField(),
                "unit_price": s.DecimalField(max_digits=12, decimal_places=2),
            },
            many=True,
        ),
    },
)

EventRow = inline_serializer(
    "EventRow",
    {
        "customer": s.CharField(help_text="id, ext:<source>:<id> or email:<address>"),
        "type": s.CharField(help_text="view, add_to_cart, purchase, open, click or your own"),
        "occurred_at": s.DateTimeField(help_text="ISO 8601; without an offset, UTC"),
        "properties": s.DictField(required=False),
        "idempotency_key": s.CharField(required=False, help_text="a repeat is not stored twice"),
    },
)

BulkResult = inline_serializer(
    "BulkResult",
    {
        "created": s.IntegerField(),
        "updated": s.IntegerField(),
        "unchanged": s.IntegerField(),
        "rejected": s.IntegerField(),
        "results": s.ListField(child=s.DictField(), help_text="[{index, id}] per accepted row"),
        "errors": s.ListField(
            child=s.DictField(), help_text="[{index, errors: {field: [messages]}}] per bad row"
        ),
    },
)

BULK_EXAMPLE = OpenApiExample(
    "Two customers, one bad",
    value=[
        {
            "source": "shop",
            "external_id": "1",
            "email": "ann@example.com",
            "consent": {"email": "subscribed"},
        },
        {"email": "not-an-email"},
    ],
    request_only=True,
)
