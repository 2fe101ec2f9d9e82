"""Fast inserts of many plain rows: COPY on PostgreSQL, executemany elsewhere.

Used where the ORM's per-object overhead dominates (a million order lines on import). Rows are
tuples in the order of `columns`; nothing is validated here, so callers pass clean data.
"""

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
