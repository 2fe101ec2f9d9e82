"""A phone number found exactly (the admin's search). Built concurrently on PostgreSQL: the customers table takes writes meanwhile."""

from django.db import migrations, models

from workers.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("crm", "0015_customer_last_name_prefix")]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(fields=["workspace", "phone"], name="customer_phone"),
        ),
    ]
