"""Row validation for bulk writes: plain functions, fast enough for 10,000-row batches.

Each cleaner takes a raw JSON value and returns the clean one or raises Invalid with a message;
`RowErrors` collects them per field the way DRF shapes field errors ({"field": ["message"]}).
"""

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import orjson
from django.utils.dateparse import parse_datetime

MAX_BATCH = 10_000
# One JSON field (attributes, properties, rules, provenance): deeper or bigger values are refused
# before they are stored, so every list, export and renderer can write them back (orjson stops
# at 255 levels; PostgreSQL's jsonb refuses \u0000).
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 64_000
BIGINT = 2**63 - 1  # the largest id or count a bigint column holds
ASCII_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() and re's \d take "²" and "١٢" too
NUL = "\x00"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


class Invalid(ValueError):
    pass


@dataclass
class RowErrors:
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        # A field is named as the client wrote it ("unknown field"), but never with a NUL.
        self.errors.setdefault(without_nul(name), []).append(message)

    def take(self, row: dict, name: str, cleaner, *args, **kwargs) -> Any:
        """Cleans row[name] if present; returns the clean value, or None after recording why."""
        try:
            return cleaner(row.get(name), *args, **kwargs)
        except Invalid as exc:
            self.add(name, str(exc))
            return None

    def __bool__(self) -> bool:
        return bool(self.errors)


@dataclass
class BatchResult:
    """What a bulk write did: counts, the id of each accepted row, and each rejected row's why."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: dict[int, int] = field(default_factory=dict)  # row index -> id
    errors: list[dict] = field(default_factory=list)  # [{"index": i, "errors": {...}}]

    def reject(self, index: int, errors: dict[str, list[str]]) -> None:
        self.errors.append({"index": index, "errors": errors})

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.errors),
            "results": [{"index": i, "id": pk} for i, pk in sorted(self.ids.items())],
            "errors": sorted(self.errors, key=lambda e: e["index"]),
        }


def without_nul(value: Any) -> Any:
    """`value` with each NUL in its strings and keys replaced by U+FFFD, for storing what
    echoes a client's input (error reports) where PostgreSQL refuses NUL."""
    if isinstance(value, str):
        return value.replace(NUL, "\ufffd") if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def text(value: Any, *, max_length: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Invalid("must be a string")
    value = value.strip()
    if NUL in value:
        raise Invalid("may not contain NUL (\\u0000) characters")
    if required and not value:
        raise Invalid("may not be blank")
    if len(value) > max_length:
        raise Invalid(f"at most {max_length} characters")
    return value


def email(value: Any) -> str | None:
    value = text(value, max_length=254)
    if not value:
        return None
    if not EMAIL_RE.match(value):
        raise Invalid("not a valid e-mail address")
    return value.lower()


def country(value: Any) -> str:
    value = text(value, max_length=2).upper()
    if value and not re.fullmatch(r"[A-Z]{2}", value):
        raise Invalid("use a two-letter ISO 3166-1 code, e.g. GB")
    return value


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone(value: Any) -> str:
    value = text(value, max_length=64)
    if value and value not in _zones():
        raise Invalid("unknown time zone; use an IANA name such as Europe/London")
    return value


def locale(value: Any) -> str:
    value = text(value, max_length=16)
    if value and not LOCALE_RE.match(value):
        raise Invalid("use a language tag such as en-GB")
    return value


def moment(value: Any) -> datetime:
    """An ISO 8601 timestamp; one without an offset is taken as UTC."""
    if not isinstance(value, str):
        raise Invalid("must be an ISO 8601 date-time string")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise Invalid("not a valid ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)  # what storing it does: 9999-12-31T23:59:59-10:00 overflows
    except OverflowError:
        raise Invalid("out of range: between years 1 and 9999 once in UTC") from None
    return parsed


def money(value: Any, *, allow_negative: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Invalid("must be a number")
    try:
        number = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise Invalid("must be a number") from None
    if not number.is_finite() or abs(number) >= Decimal("1e11"):
        raise Invalid("out of range")
    if number < 0 and not allow_negative:
        raise Invalid("may not be negative")
    return number


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid("must be an integer")
    if isinstance(value, str):
        digits = value.strip()
        if not ASCII_DIGITS.fullmatch(digits.removeprefix("-")):
            raise Invalid("must be an integer")
        value = int(digits)
    if abs(value) > 2**31 - 1:
        raise Invalid("out of range")
    return value


def identifier(value: Any) -> int:
    """A row id as clients write it: a JSON integer or a string of ASCII digits, 1 to BIGINT.

    `int()` would take "١٢" as 12 and raise on "²", both of which str.isdigit() lets through."""
    if isinstance(value, str) and ASCII_DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("must be an id (a whole number)")
    if not 0 < value <= BIGINT:
        raise Invalid(f"out of range: ids are from 1 to {BIGINT}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def is_identifier(value: Any) -> bool:
    """Whether `value` is an id identifier() takes (a SKU, say, is not)."""
    try:
        identifier(value)
    except Invalid:
        return False
    return True


def json_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES):
    """A JSON value any JSON column stores and any renderer writes back, unchanged.

    Refuses nesting deeper than `max_depth`, more than `max_bytes` serialised, NUL characters
    in keys or strings and integers beyond 64 bits, naming where. Runs per
    row of 10,000-row batches: one orjson pass decides for ordinary values; only a value that
    could break a rule is walked in Python to say where.
    """
    try:
        dumped = orjson.dumps(value)
    except orjson.JSONEncodeError:
        dumped = None  # too deep or an integer beyond 64 bits: the walk says which and where
    if dumped is not None:
        if len(dumped) > max_bytes:
            raise Invalid(f"at most {max_bytes} bytes as JSON, got {len(dumped)}")
        nesting = dumped.count(b"{") + dumped.count(b"[")
        if nesting <= max_depth and b"\\u0000" not in dumped and not LONG_NUMBER.search(dumped):
            return value
    _walk(value, max_depth)
    return value


LONG_NUMBER = re.compile(rb"[0-9]{19}")  # the only way a number beyond 64 bits can be written


def _walk(value: Any, max_depth: int) -> None:
    stack = [(value, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise Invalid(f"nested more than {max_depth} levels deep{_at(where)}")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str) and NUL in key:
                    raise Invalid(f"a key may not contain NUL (\\u0000) characters{_at(where)}")
                path = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
                stack.append((child, depth + 1, path))
        elif isinstance(node, str):
            if NUL in node:
                raise Invalid(f"may not contain NUL (\\u0000) characters{_at(where)}")
        elif isinstance(node, int) and not isinstance(node, bool):
            if not -BIGINT - 1 <= node <= BIGINT:
                raise Invalid(f"integer out of range (64 bits){_at(where)}")
        elif not (node is None or isinstance(node, bool | float)):  # parsed JSON is finite
            raise Invalid(f"not a JSON value{_at(where)}")


def _at(where: str) -> str:
    return f" (at {where.lstrip('.')[:200]})" if where else ""


def json_object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise Invalid("must be a JSON object")
    return json_value(value)


def currency(value: Any) -> str:
    value = text(value, max_length=3).upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise Invalid("use a three-letter ISO 4217 code, e.g. GBP")
    return value


def choice(value: Any, options: tuple[str, ...] | list[str]) -> str:
    if value not in options:
        raise Invalid(f"must be one of: {', '.join(options)}")
    return value


def rows_of(payload: Any) -> list:
    """The list of rows in a bulk request body (a list, or {"rows": [...]})."""
    if isinstance(payload, dict):
        payload = payload.get("rows")
    if not isinstance(payload, list):
        raise Invalid('send a JSON list of rows, or {"rows": [...]}')
    if len(payload) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} rows per batch, got {len(payload)}")
    return payload
