# "Once" for the ledger becomes two rules: a broadcast sends once per campaign x customer (as
# before), a journey once per enrolment x send step. The new unique indexes are built first, so
# the ledger is never without one; on PostgreSQL CONCURRENTLY, since the ledger is one of the
# big tables (workers.migration_ops), then the old constraint goes.

from django.db import migrations, models
from django.db.models import Q

BROADCAST = models.UniqueConstraint(
    fields=["campaign", "customer"],
    condition=Q(enrolment_id__isnull=True),
    name="message_once_broadcast",
)
PER_STEP = models.UniqueConstraint(
    fields=["enrolment_id", "step"],
    condition=Q(enrolment_id__isnull=False),
    name="message_once_per_step",
)
OLD = models.UniqueConstraint(fields=["campaign", "customer"], name="message_once")

POSTGRES_UP = [
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS message_once_broadcast"
    " ON campaigns_message (campaign_id, customer_id) WHERE enrolment_id IS NULL",
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS message_once_per_step"
    " ON campaigns_message (enrolment_id, step) WHERE enrolment_id IS NOT NULL",
    "ALTER TABLE campaigns_message DROP CONSTRAINT IF EXISTS message_once",
]
POSTGRES_DOWN = [
    "ALTER TABLE campaigns_message ADD CONSTRAINT message_once UNIQUE (campaign_id, customer_id)",
    "DROP INDEX CONCURRENTLY IF EXISTS message_once_per_step",
    "DROP INDEX CONCURRENTLY IF EXISTS message_once_broadcast",
]


class SwapLedgerConstraints(migrations.operations.base.Operation):
    """The two partial unique indexes in, the old constraint out. PostgreSQL: built
    CONCURRENTLY, writes go on. SQLite holds a table's constraints in its definition: the table
    is rebuilt as the new state describes it (what AddConstraint and RemoveConstraint do there)."""

    reversible = True
    state_operations = [
        migrations.AddConstraint(model_name="message", constraint=BROADCAST),
        migrations.AddConstraint(model_name="message", constraint=PER_STEP),
        migrations.RemoveConstraint(model_name="message", name="message_once"),
    ]

    def state_forwards(self, app_label, state):
        for operation in self.state_operations:
            operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._swap(schema_editor, to_state, POSTGRES_UP)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._swap(schema_editor, to_state, POSTGRES_DOWN)

    @staticmethod
    def _swap(schema_editor, state, postgres: list[str]) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for sql in postgres:
                schema_editor.execute(sql)
        else:
            schema_editor._remake_table(state.apps.get_model("campaigns", "Message"))

    def describe(self) -> str:
        return "Send ledger: once per broadcast x customer, once per enrolment x step"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0007_journey_messages"),
    ]

    operations = [SwapLedgerConstraints()]
