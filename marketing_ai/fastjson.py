"""JSON for the API through orjson: bulk batches of 10,000 rows are parsed and lists of a
thousand rows rendered in a fraction of the standard library's time.

The parser is the API's door: a body over API_MAX_BODY_BYTES is refused (413) before it is read
into memory, and a body nested deeper than the renderer can write (orjson's 255 levels) is
refused (400), so nothing accepted can fail on the way out. What each field may hold (NUL
characters, depth, size) is checked per field, so a bulk batch keeps its good rows.
"""

import io
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import Promise
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # as DRF's encoder renders amounts
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


class LengthRequired(APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"


def take_unsized_body(request: HttpRequest) -> None:
    """Makes a body sent without Content-Length (Transfer-Encoding: chunked) readable, or refuses
    it. Call before the body is parsed; raises LengthRequired (411) or BodyTooLarge (413).

    Django reads exactly Content-Length bytes, so such a body read as empty, and a PATCH
    answered 200 having changed nothing. Where the server has read the whole body and marks
    the end of it (`wsgi.input_terminated`: gunicorn does, decoding the chunks), the body is
    read here, at most API_MAX_BODY_BYTES, and given its length; anywhere else a request must
    say how long it is."""
    meta = request.META
    if meta.get("CONTENT_LENGTH") or "HTTP_TRANSFER_ENCODING" not in meta:
        return
    if not meta.get("wsgi.input_terminated"):
        raise LengthRequired(
            {
                "body": [
                    "send the body with a Content-Length header (this server does not "
                    "read Transfer-Encoding: chunked bodies)"
                ]
            }
        )
    limit = settings.API_MAX_BODY_BYTES
    raw = meta["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise _too_large(limit)
    # Django's request stream was limited to the declared length, none; this is the body.
    request._stream = io.BytesIO(raw)
    meta["CONTENT_LENGTH"] = str(len(raw))


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        raw = stream.read(limit + 1)  # a body without (or lying about) its length stops here
        if len(raw) > limit:
            raise _too_large(limit)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            orjson.dumps(data)  # C speed even for a 10,000-row batch; refuses > 255 levels
        except orjson.JSONEncodeError:
            field = _too_deep(data, MAX_DEPTH)
            raise ValidationError({field: [f"nested more than {MAX_DEPTH} levels deep"]}) from None
        return data


MAX_DEPTH = 255  # orjson's own limit on what it writes


def _too_deep(data: Any, limit: int) -> str:
    """The field holding the first value nested deeper than `limit` ("attributes", or
    "[3].attributes" in a list of rows)."""
    stack = [(data, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return _field(path)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (*path, key)))
    return "non_field_errors"


def _field(path: tuple) -> str:
    """The path's first name, with the row it is in: ("rows", 0, "attributes", "a") ->
    "rows[0].attributes"; (3, "email") -> "[3].email"; ("attributes", "a") -> "attributes"."""
    steps: list = []
    for position, step in enumerate(path):
        steps.append(step)
        in_rows = position == 0 and len(path) > 1 and isinstance(path[1], int)
        if isinstance(step, str) and not in_rows:
            break
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps).lstrip(".")


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        {
            "body": [
                f"the request body is over {limit} bytes (API_MAX_BODY_BYTES); send large "
                "imports as several batches"
            ]
        }
    )


class JSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(
            data, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
        )
