import importlib

import django.core.validators
from django.db import migrations, models

from workers.migration_ops import vendor_sql

# SQLite adds a column by rebuilding the table (copy, drop, rename), and the rename fails while
# the event outbox trigger (0009) names crm_workspace: the trigger is dropped for the rebuild
# and made again after it. PostgreSQL adds the column in place.
outbox = importlib.import_module("crm.migrations.0009_event_outbox")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0011_forecasts"),
    ]

    operations = [
        vendor_sql(
            postgres_up=[], postgres_down=[],
            sqlite_up=outbox.SQLITE_DOWN, sqlite_down=outbox.SQLITE_UP,
        ),
        migrations.AddField(
            model_name="workspace",
            name="rising_boost",
            field=models.FloatField(
                default=0.0,
                help_text="Lift products the active forecast has rising in recommendation "
                "lists: each one's score is multiplied by 1 + this weight x its forecast change "
                "(a lift of 50% at most). 0 turns it off; 0.2 to 0.5 reorders near neighbours.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        vendor_sql(
            postgres_up=[], postgres_down=[],
            sqlite_up=outbox.SQLITE_UP, sqlite_down=outbox.SQLITE_DOWN,
        ),
    ]
