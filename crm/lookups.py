"""`field__any=[...]`: membership in a list sent as one array parameter on PostgreSQL.

`__in` with 1,000 values writes 1,000 placeholders that the driver parses and fills on every
batch; `= ANY(%s)` sends one array. Other databases get a plain IN list.
"""

from django.db.models import CharField, Lookup


@CharField.register_lookup
class Any(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::text[])", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
