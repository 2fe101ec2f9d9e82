"""What every workspace-scoped API view shares: key auth, scopes, throttling, pagination,
Idempotency-Key replay and the bulk endpoint's shape."""

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import refs, validation
from crm.api.auth import ApiKeyAuthentication, ApiKeyThrottle, HasScope
from crm.models import IdempotencyRecord, Workspace
from marketing_ai.fastjson import take_unsized_body
from workers.retry import retrying


class Cursor(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        # The position is an id (ordering is by id); a forged one would reach the query.
        if cursor is not None and cursor.position is not None:
            try:
                validation.identifier(cursor.position)
            except validation.Invalid:
                raise ValidationError({"cursor": ["not a cursor this API gave out"]}) from None
        return cursor


# Path parameters that name rows by id, as the OpenAPI schema calls them; `ref` names a
# customer (crm.refs).
ID_KWARGS = {"pk": "id", "variant_pk": "variant_pk", "enrolment_pk": "enrolment_pk"}


class WorkspaceApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ApiKeyThrottle]
    read_scope = "crm:read"
    write_scope = "crm:write"

    @property
    def workspace(self) -> Workspace:
        return self.request.auth.workspace

    def initial(self, request, *args, **kwargs) -> None:
        """After auth: the path's and the query string's values are checked here, once for every
        endpoint, so none reaches a query it would break (an id beyond bigint, "²", NUL)."""
        super().initial(request, *args, **kwargs)
        take_unsized_body(request._request)  # before anything reads request.data
        errors = validation.RowErrors()
        for name, value in kwargs.items():
            if name in ID_KWARGS:
                try:
                    validation.identifier(value)
                except validation.Invalid as exc:
                    errors.add(ID_KWARGS[name], str(exc))
            elif name == "ref":
                errors.take(kwargs, name, refs.parse)
            elif isinstance(value, str) and validation.NUL in value:
                errors.add(name, "may not contain NUL (\\u0000) characters")
        for name, values in request.query_params.lists():
            if any(validation.NUL in value for value in values) or validation.NUL in name:
                errors.add(name, "may not contain NUL (\\u0000) characters")
        if errors:
            raise ValidationError(errors.errors)

    def paginate(self, queryset, shape: Callable[[list], list]) -> Response:
        paginator = Cursor()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(shape(page))

    def filtered(self, filterset_class, queryset):
        if not set(self.request.query_params) - {"limit", "cursor", "expand"}:
            return queryset  # nothing to filter by: skip building the FilterSet
        filterset = filterset_class(self.request.query_params, queryset=queryset)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.qs


def body_hash(request: Request) -> str:
    return hashlib.sha256(
        json.dumps(request.data, sort_keys=True, default=str).encode()
    ).hexdigest()


def idempotent(request: Request, workspace: Workspace, run: Callable[[], Response]) -> Response:
    """Runs a write once per `Idempotency-Key` header; a retry gets the first answer back.

    The answer is stored in the same transaction as the write, so a write that rolled back left
    no record and may be retried. The same key with a different body is refused (422).
    """
    try:
        key = validation.text(request.headers.get("Idempotency-Key", ""), max_length=200)
    except validation.Invalid as exc:
        raise ValidationError({"Idempotency-Key": [str(exc)]}) from None
    if not key:
        return run()
    digest = body_hash(request)
    endpoint = request.path.removesuffix("/")  # one route, with or without its trailing slash
    record = IdempotencyRecord.objects.filter(workspace=workspace, key=key).first()
    if record is not None:
        return _replay(record, digest, endpoint)

    def write_and_record() -> Response:
        response = run()
        if response.status_code < 500:
            IdempotencyRecord.objects.create(
                workspace=workspace,
                key=key,
                endpoint=endpoint,
                request_hash=digest,
                status_code=response.status_code,
                # Error reports echo the client's keys and values, NUL among them.
                response=validation.without_nul(json.loads(json.dumps(response.data, default=str))),
            )
        return response

    try:
        # One transaction, re-run whole after a deadlock or serialisation failure.
        response = retrying(write_and_record)
    except IntegrityError:
        # The same key was being processed concurrently and the other request won.
        record = IdempotencyRecord.objects.filter(workspace=workspace, key=key).first()
        if record is None:
            raise
        return _replay(record, digest, endpoint)
    return response


def _replay(record: IdempotencyRecord, digest: str, endpoint: str) -> Response:
    if record.request_hash != digest or record.endpoint != endpoint:
        return Response(
            {"detail": "this Idempotency-Key was used with a different request"},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    response = Response(record.response, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def bulk_response(request: Request, workspace: Workspace, service: Callable) -> Response:
    """POST <resource>/bulk: validates the envelope, runs the batch service, reports per row.

    200 with counts, ids by row index and rejected rows (index + field errors); the good rows of
    a batch are kept even when others are rejected.
    """

    def run() -> Response:
        try:
            rows = validation.rows_of(request.data)
        except validation.Invalid as exc:
            raise ValidationError({"rows": [str(exc)]}) from exc
        result = service(workspace=workspace, rows=rows)
        return Response(result.as_dict(), status=status.HTTP_200_OK)

    return idempotent(request, workspace, run)


def single_write(result: validation.BatchResult, fetch: Callable[[int], dict]) -> Response:
    """Turns a one-row batch into a REST answer: 400 with field errors, 201 created, 200 updated."""
    if result.errors:
        raise ValidationError(result.errors[0]["errors"])
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Response(fetch(result.ids[0]), status=code)
