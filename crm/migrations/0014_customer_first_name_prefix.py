"""A first name found by its beginning, whatever the case (the admin's search). Built concurrently on PostgreSQL: the customers table takes writes meanwhile."""

import crm.models.customers
from django.db import migrations

from workers.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("crm", "0013_customer_email_prefix")]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=crm.models.customers.PrefixIndex("first_name", name="customer_first_name_prefix"),
        ),
    ]
