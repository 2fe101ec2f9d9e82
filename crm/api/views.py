"""CRM endpoints under /api/v1/: validate, call a service or selector, shape dicts."""

from django.db.models import ProtectedError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers as s
from rest_framework import status
from rest_framework.exceptions import MethodNotAllowed, ValidationError
from rest_framework.response import Response

from crm import refs, selectors, services, validation
from crm.api import docs, filters
from crm.api.base import WorkspaceApi, bulk_response, idempotent, single_write
from crm.api.schema import filter_parameters
from crm.models import Customer, Event, Order, Product

IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="a retry with the same key and body gets the first answer back",
)


def bulk_schema(row):
    return extend_schema(
        request=inline_serializer(
            f"{row.__class__.__name__}Batch", {"rows": row.__class__(many=True)}
        ),
        responses=docs.BulkResult,
        summary="Upsert up to 10,000 rows (a JSON list, or {rows: [...]}) in one transaction; "
        "bad rows come back with index and reason, good ones are kept",
        parameters=[IDEMPOTENCY],
        examples=[docs.BULK_EXAMPLE],
    )


def list_schema(filterset_class, resource: str, row=None, response=None):
    return {
        "get": extend_schema(
            operation_id=f"{resource}_list",
            parameters=filter_parameters(filterset_class),
            responses=OpenApiTypes.OBJECT
            if response is None
            else inline_serializer(
                f"{resource.title()}Page",
                {
                    "next": s.URLField(allow_null=True),
                    "previous": s.URLField(allow_null=True),
                    "results": response.__class__(many=True),
                },
            ),
        ),
        "post": extend_schema(
            request=row,
            responses={201: response or OpenApiTypes.OBJECT, 200: response or OpenApiTypes.OBJECT},
            parameters=[IDEMPOTENCY],
        ),
    }


def actor(request) -> str:
    return str(request.user)


class ListCreateApi(WorkspaceApi):
    """GET: the workspace's rows, filtered and cursor-paginated; POST: one row through the
    resource's bulk service (so one row and 10,000 rows obey the same rules)."""

    model: type
    filterset: type
    values: tuple[str, ...]
    upsert: staticmethod
    fetch: staticmethod

    def rows(self):
        return self.model.objects.filter(workspace=self.workspace)

    def shape(self, rows: list) -> list:
        return rows

    def get(self, request):
        queryset = self.filtered(self.filterset, self.rows())
        return self.paginate(queryset.values(*self.values), self.shape)

    def post(self, request):
        def run():
            rows = [request.data] if isinstance(request.data, dict) else [None]
            return single_write(self.upsert(workspace=self.workspace, rows=rows), self.fetch)

        return idempotent(request, self.workspace, run)


class BulkApi(WorkspaceApi):
    upsert: staticmethod

    def post(self, request):
        return bulk_response(request, self.workspace, self.upsert)


# --- customers ------------------------------------------------------------------------------


@extend_schema_view(
    **list_schema(filters.CustomerFilter, "customers", docs.CustomerRow, docs.Customer)
)
class CustomerListApi(ListCreateApi):
    model = Customer
    filterset = filters.CustomerFilter
    values = selectors.CUSTOMER_VALUES
    upsert = staticmethod(services.customer_bulk_upsert)
    fetch = staticmethod(selectors.customer_data)

    def rows(self):
        return super().rows().filter(erased_at__isnull=True)

    def shape(self, rows: list) -> list:
        # Identities and consent cost two more queries per page: only when asked for.
        expand = set(self.request.query_params.get("expand", "").split(","))
        return selectors.customers_shape(rows) if expand & {"identities", "consent"} else rows


@extend_schema_view(post=bulk_schema(docs.CustomerRow))
class CustomerBulkApi(BulkApi):
    upsert = staticmethod(services.customer_bulk_upsert)


class CustomerDetailApi(WorkspaceApi):
    """A customer by id, `ext:<source>:<external id>` or `email:<address>`."""

    # DELETE erases the person everywhere, as POST /privacy/erase does: it needs that scope too.
    extra_scopes = {"DELETE": ("privacy",)}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, ref):
        customer = selectors.customer_get(workspace=self.workspace, ref=ref)
        return Response(selectors.customer_data(customer.pk))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def patch(self, request, ref):
        customer = selectors.customer_get(workspace=self.workspace, ref=ref)
        errors = services.customer_update(customer=customer, data=request.data)
        if errors:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(selectors.customer_data(customer.pk))

    put = patch

    @extend_schema(
        summary="Erase the customer everywhere (privacy erasure; needs crm:write and privacy)",
        responses=None,
    )
    def delete(self, request, ref):
        customer = selectors.customer_get(workspace=self.workspace, ref=ref)
        services.privacy_erase(customer=customer, actor=actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerRecommendationsApi(WorkspaceApi):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("limit", int, OpenApiParameter.QUERY),
            OpenApiParameter(
                "boost",
                float,
                OpenApiParameter.QUERY,
                description="0 to 1: lift products forecast to rise (default: the workspace's "
                "rising_boost); a boosted answer says so under `boost`",
            ),
        ],
        summary="The customer's recommended products (most popular ones for a new customer)",
    )
    def get(self, request, ref):
        try:
            limit = max(1, min(int(request.query_params.get("limit", 10)), 50))
        except ValueError:
            return Response({"limit": ["an integer from 1 to 50"]}, status=400)
        boost = request.query_params.get("boost")
        if boost is not None:
            try:
                boost = float(boost)
            except ValueError:
                boost = -1.0
            if not 0 <= boost <= 1:  # NaN fails this too
                return Response({"boost": ["a number from 0 to 1"]}, status=400)
        body = selectors.recommendations_body(
            workspace=self.workspace, ref=ref, limit=limit, boost=boost
        )
        return HttpResponse(body, content_type="application/json")


class CustomerTimelineApi(WorkspaceApi):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, ref):
        customer = selectors.customer_get(workspace=self.workspace, ref=ref)
        return Response({"results": selectors.customer_timeline(customer=customer)})


# --- products -------------------------------------------------------------------------------


@extend_schema_view(**list_schema(filters.ProductFilter, "products", docs.ProductRow))
class ProductListApi(ListCreateApi):
    model = Product
    filterset = filters.ProductFilter
    values = selectors.PRODUCT_VALUES
    upsert = staticmethod(services.product_bulk_upsert)
    fetch = staticmethod(selectors.product_data)


@extend_schema_view(post=bulk_schema(docs.ProductRow))
class ProductBulkApi(BulkApi):
    upsert = staticmethod(services.product_bulk_upsert)


class ProductDetailApi(WorkspaceApi):
    def product(self, pk) -> Product:
        return get_object_or_404(Product, workspace=self.workspace, pk=pk)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        return Response(selectors.product_data(self.product(pk).pk))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def patch(self, request, pk):
        product = self.product(pk)
        data = request.data if isinstance(request.data, dict) else None
        row = {**data, "sku": product.sku} if data is not None else None
        if data is not None and "sku" in data and data["sku"] != product.sku:
            return Response({"sku": ["a product's SKU cannot change"]}, status=400)
        result = services.product_bulk_upsert(workspace=self.workspace, rows=[row])
        return single_write(result, selectors.product_data)

    put = patch

    @extend_schema(responses=None)
    def delete(self, request, pk):
        try:
            self.product(pk).delete()
        except ProtectedError:
            return Response(
                {"detail": "this product has orders; set active=false instead of deleting it"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- orders ---------------------------------------------------------------------------------


@extend_schema_view(**list_schema(filters.OrderFilter, "orders", docs.OrderRow))
class OrderListApi(ListCreateApi):
    model = Order
    filterset = filters.OrderFilter
    values = selectors.ORDER_VALUES
    upsert = staticmethod(services.order_bulk_upsert)
    fetch = staticmethod(selectors.order_data)

    def shape(self, rows: list) -> list:
        return selectors.orders_shape(rows)


@extend_schema_view(post=bulk_schema(docs.OrderRow))
class OrderBulkApi(BulkApi):
    upsert = staticmethod(services.order_bulk_upsert)


class OrderDetailApi(WorkspaceApi):
    def order(self, pk) -> Order:
        return get_object_or_404(Order, workspace=self.workspace, pk=pk)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        return Response(selectors.order_data(self.order(pk).pk))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request, pk):
        order = self.order(pk)
        data = request.data if isinstance(request.data, dict) else None
        if data is not None and data.get("external_id", order.external_id) != order.external_id:
            return Response({"external_id": ["an order's external id cannot change"]}, status=400)
        row = {**data, "external_id": order.external_id} if data is not None else None
        result = services.order_bulk_upsert(workspace=self.workspace, rows=[row])
        return single_write(result, selectors.order_data)

    patch = put

    @extend_schema(responses=None)
    def delete(self, request, pk):
        services.order_delete(order=self.order(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- events ---------------------------------------------------------------------------------


@extend_schema_view(**list_schema(filters.EventFilter, "events", docs.EventRow))
class EventListApi(ListCreateApi):
    model = Event
    filterset = filters.EventFilter
    values = selectors.EVENT_VALUES
    upsert = staticmethod(services.event_bulk_create)
    fetch = staticmethod(selectors.event_data)


@extend_schema_view(post=bulk_schema(docs.EventRow))
class EventBulkApi(BulkApi):
    upsert = staticmethod(services.event_bulk_create)


class EventDetailApi(WorkspaceApi):
    def event(self, pk) -> Event:
        return get_object_or_404(Event, workspace=self.workspace, pk=pk)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        return Response(selectors.event_data(self.event(pk).pk))

    def http_method_not_allowed(self, request, *args, **kwargs):
        # No put/patch handler at all (not one answering 405), so that the Allow header and the
        # OpenAPI schema say what the API does; the 405 still says why.
        if request.method in ("PUT", "PATCH"):
            raise MethodNotAllowed(
                request.method,
                detail="events are append-only; send a new event instead of editing one",
            )
        return super().http_method_not_allowed(request, *args, **kwargs)

    @extend_schema(responses=None)
    def delete(self, request, pk):
        self.event(pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- privacy --------------------------------------------------------------------------------


class PrivacyApi(WorkspaceApi):
    read_scope = write_scope = "privacy"

    def customer(self, request) -> Customer:
        data = request.data if isinstance(request.data, dict) else {}
        if "customer" not in data:
            raise ValidationError(
                {"customer": ["required: an id, ext:<source>:<id> or email:<address>"]}
            )
        try:  # a malformed reference is the caller's mistake (400), an unknown one a 404
            refs.parse(data["customer"])
        except validation.Invalid as exc:
            raise ValidationError({"customer": [str(exc)]}) from None
        return selectors.customer_get(workspace=self.workspace, ref=str(data["customer"]))


class PrivacyExportApi(PrivacyApi):
    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        customer = self.customer(request)
        return Response(services.privacy_export(customer=customer, actor=actor(request)))


class PrivacyEraseApi(PrivacyApi):
    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        customer = self.customer(request)
        entry = services.privacy_erase(customer=customer, actor=actor(request))
        return Response({"erased": customer.pk, "audit_id": entry.pk, "removed": entry.details})
