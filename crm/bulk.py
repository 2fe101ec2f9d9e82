"""Fast inserts of many plain rows: COPY on PostgreSQL, executemany elsewhere.

Used where the ORM's per-object overhead dominates (a million order lines on import). Rows are
tuples in the order of `columns`; nothing is validated here, so callers pass clean data.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence

from django.db import connection, models


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Inserts `rows` into `model`'s table; returns how many. Runs in the caller's transaction."""
    table = model._meta.db_table
    names = [model._meta.get_field(c).column for c in columns]
    quoted = ", ".join(connection.ops.quote_name(n) for n in names)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            sql = f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN"
            with raw.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        placeholders = ", ".join(["%s"] * len(names))
        # Identifiers come from model metadata, quoted; values travel as parameters.
        sql = f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) VALUES ({placeholders})"  # noqa: S608
        chunk: list[Sequence] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == 10_000:
                cursor.executemany(sql, chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            cursor.executemany(sql, chunk)
            count += len(chunk)
    return count


# PostgreSQL array types for the parameters of INSERT ... SELECT FROM unnest(...).
_ARRAY_TYPES = {
    "CharField": "text", "EmailField": "text", "TextField": "text", "SlugField": "text",
    "JSONField": "text", "DateTimeField": "timestamptz", "BooleanField": "boolean",
    "IntegerField": "bigint", "BigIntegerField": "bigint", "PositiveIntegerField": "bigint",
    "PositiveSmallIntegerField": "bigint", "SmallIntegerField": "bigint", "ForeignKey": "bigint",
    "BigAutoField": "bigint", "AutoField": "bigint", "FloatField": "float8",
    "DecimalField": "numeric",
}  # fmt: skip


def insert_returning_ids(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> list[int] | None:
    """Inserts rows (tuples of Python values in `columns` order) and returns their ids in order.

    On PostgreSQL this is one `INSERT ... SELECT FROM unnest(arrays)` statement, skipping the
    per-object model machinery that dominates bulk_create for 1,000-row batches; JSON values are
    serialised here. With `conflict` (unique columns) the insert becomes an upsert that updates
    `update` (or does nothing), and returns None instead of ids. Elsewhere it falls back to
    bulk_create, with the same results.
    """
    if not rows:
        return [] if not conflict else None
    fields = [model._meta.get_field(c) for c in columns]
    if connection.vendor != "postgresql":
        objects = [
            model(**dict(zip([f.attname for f in fields], row, strict=True))) for row in rows
        ]
        if conflict:
            model.objects.bulk_create(
                objects,
                batch_size=2000,
                update_conflicts=bool(update),
                ignore_conflicts=not update,
                unique_fields=list(conflict) if update else None,
                update_fields=list(update) if update else None,
            )
            return None
        model.objects.bulk_create(objects, batch_size=2000)
        return [o.pk for o in objects]

    kinds = [f.get_internal_type() for f in fields]
    arrays = []
    for position, kind in enumerate(kinds):
        values = [row[position] for row in rows]
        if kind == "JSONField":
            values = [json.dumps(v) for v in values]
        arrays.append(values)
    names = [connection.ops.quote_name(f.column) for f in fields]
    casts = [f"c{i}::jsonb" if kind == "JSONField" else f"c{i}" for i, kind in enumerate(kinds)]
    # %b: arrays travel in binary, so no quoting or escaping of every element (the cost that
    # dominates a 1,000-row batch with client-side literal interpolation).
    unnest = ", ".join(f"%b::{_ARRAY_TYPES[kind]}[]" for kind in kinds)
    aliases = ", ".join(f"c{i}" for i in range(len(kinds)))
    table = connection.ops.quote_name(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608 (quoted identifiers)
        f"SELECT {', '.join(casts)} FROM unnest({unnest}) AS t({aliases})"
    )
    if conflict:
        target = ", ".join(
            connection.ops.quote_name(model._meta.get_field(c).column) for c in conflict
        )
        if update:
            sets = ", ".join(
                f"{connection.ops.quote_name(model._meta.get_field(c).column)} = "
                f"EXCLUDED.{connection.ops.quote_name(model._meta.get_field(c).column)}"
                for c in update
            )
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        execute_bound(sql, arrays)
        return None
    # PostgreSQL returns the rows of INSERT ... SELECT in the order unnest produced them;
    # Django's own bulk_create on PostgreSQL relies on the same.
    return [row[0] for row in execute_bound(sql + " RETURNING id", arrays, fetch=True)]


def execute_bound(sql: str, params: list, fetch: bool = False) -> list:
    """Runs `sql` with server-side parameters on Django's own connection (so inside its
    transaction); Django's cursor would interpolate the arrays into the SQL text instead.
    PostgreSQL only; `%b` placeholders send a parameter in binary."""
    # psycopg: the PostgreSQL driver, loaded only where the database is PostgreSQL
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else []


def lock_keys(keys: Iterable[str]) -> None:
    """Holds a transaction-scoped lock on each key (PostgreSQL advisory locks, taken in sorted
    order so two batches never deadlock). Batches that share no key do not wait for each other;
    elsewhere the caller's transaction is the lock (SQLite serialises writers)."""
    if connection.vendor != "postgresql":
        return
    hashes = sorted(
        {
            int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big", signed=True)
            for k in keys
        }
    )
    if hashes:
        execute_bound(
            "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%b::bigint[]) AS k "
            "ORDER BY 1) AS ordered",
            [hashes],
            fetch=True,
        )
