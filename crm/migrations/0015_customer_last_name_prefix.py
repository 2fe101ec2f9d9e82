"""A last name found by its beginning, whatever the case (the admin's search). Built concurrently on PostgreSQL: the customers table takes writes meanwhile."""

import crm.models.customers
from django.db import migrations

from workers.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("crm", "0014_customer_first_name_prefix")]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=crm.models.customers.PrefixIndex("last_name", name="customer_last_name_prefix"),
        ),
    ]
