"""A customer's e-mail address found by its beginning (the admin's search). Built concurrently on PostgreSQL: the customers table takes writes meanwhile."""

from django.db import migrations, models

from workers.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("crm", "0012_workspace_rising_boost")]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(
                fields=["workspace", "email"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_email_prefix",
            ),
        ),
    ]
