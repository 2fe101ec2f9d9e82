"""workers.migration_ops: indexes on the big tables are built CONCURRENTLY on PostgreSQL: every
migration written from now on is scanned for a plain index on them, and the helper builds and drops
an index on the database the suite runs on."""

import re

import pytest
from django.apps import apps
from django.db import NotSupportedError, connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from workers.migration_ops import BIG_TABLES, AddIndexConcurrently

APPS = ("crm", "campaigns", "workers")
# Written before the rule; they ran long ago and are never rewritten.
BEFORE_THE_RULE = {
    ("crm", "0001_initial"), ("crm", "0002_list_indexes"),
    ("crm", "0003_drop_covered_workspace_indexes"), ("crm", "0004_covering_indexes"),
    ("crm", "0005_event_timeline_covers_type"), ("crm", "0006_recommendation"),
    ("crm", "0007_support_chat"), ("campaigns", "0001_initial"), ("campaigns", "0002_brandrules"),
    ("campaigns", "0003_outbound_reasons"), ("workers", "0001_initial"),
    ("workers", "0002_taskrun_workspace"), ("workers", "0003_model_version_workspace"),
    ("workers", "0004_taskrun_enqueued_at_sends"),
}  # fmt: skip
PLAIN_CREATE_INDEX = re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", re.IGNORECASE)


def blocking_index_operations(app_label: str, migration, loader=None) -> list[str]:
    """What in `migration` would build an index on a big table while blocking its writes."""
    found = []
    for operation in migration.operations:
        table = f"{app_label}.{getattr(operation, 'model_name', '')}"
        where = f"{app_label}.{migration.name}: {operation.describe()}"
        if isinstance(operation, AddIndexConcurrently):
            if migration.atomic:
                found.append(f"{where} (the migration needs atomic = False)")
            continue
        if table not in BIG_TABLES and not isinstance(operation, migrations.RunSQL):
            continue
        if isinstance(operation, migrations.AddIndex):
            found.append(f"{where} (use workers.migration_ops.AddIndexConcurrently)")
        elif isinstance(operation, migrations.AddField) and _indexed(operation.field):
            found.append(f"{where} (add the field with db_index=False, then the index)")
        elif isinstance(operation, migrations.AlterField) and _indexed(operation.field):
            before = loader.project_state((app_label, migration.name), at_end=False)
            old = before.models[app_label, operation.model_name].fields[operation.name]
            if not _indexed(old):
                found.append(f"{where} (alter without the index, then AddIndexConcurrently)")
        elif isinstance(operation, migrations.RunSQL):
            statements = (
                operation.sql if isinstance(operation.sql, list | tuple) else [operation.sql]
            )
            if any(PLAIN_CREATE_INDEX.search(str(sql)) for sql in statements):
                found.append(f"{where} (CREATE INDEX CONCURRENTLY, in a non-atomic migration)")
    return found


def _indexed(field) -> bool:
    return (field.db_index or field.unique) and not field.primary_key


def test_no_migration_since_the_rule_blocks_writes_to_a_big_table_while_indexing():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = []
    for (app_label, name), migration in loader.disk_migrations.items():
        if app_label in APPS and (app_label, name) not in BEFORE_THE_RULE:
            found += blocking_index_operations(app_label, migration, loader)
    assert not found, "index built without CONCURRENTLY on a big table:\n" + "\n".join(found)


def test_the_scan_catches_a_plain_index_and_passes_the_concurrent_one():
    index = models.Index(fields=["locale"], name="customer_locale")

    def migration(*operations, atomic=True):
        made = migrations.Migration("0099_example", "crm")
        made.operations, made.atomic = list(operations), atomic
        return made

    assert blocking_index_operations("crm", migration(migrations.AddIndex("customer", index)))
    tag = models.CharField(max_length=10, db_index=True)
    assert blocking_index_operations("crm", migration(migrations.AddField("event", "tag", tag)))
    raw = migrations.RunSQL("CREATE INDEX x ON crm_order (placed_at)")
    assert blocking_index_operations("crm", migration(raw))
    assert blocking_index_operations("crm", migration(AddIndexConcurrently("customer", index)))
    concurrent = migration(AddIndexConcurrently("customer", index), atomic=False)
    assert blocking_index_operations("crm", concurrent) == []
    small = migration(migrations.AddIndex("workspace", models.Index(fields=["name"], name="w")))
    assert blocking_index_operations("crm", small) == []


@pytest.mark.django_db(transaction=True)
def test_the_helper_builds_and_drops_an_index_on_this_database():
    operation = AddIndexConcurrently(
        "customer", models.Index(fields=["locale"], name="customer_locale_concurrent")
    )
    before = ProjectState.from_apps(apps)
    after = before.clone()
    operation.state_forwards("crm", after)

    def indexes() -> set:
        with connection.cursor() as cursor:
            return set(connection.introspection.get_constraints(cursor, "crm_customer"))

    if connection.vendor == "postgresql":  # CONCURRENTLY: PostgreSQL refuses it in a transaction
        with pytest.raises(NotSupportedError), connection.schema_editor(atomic=True) as editor:
            operation.database_forwards("crm", editor, before, after)
    with connection.schema_editor(atomic=False) as editor:  # as a non-atomic migration runs it
        operation.database_forwards("crm", editor, before, after)
    assert "customer_locale_concurrent" in indexes()
    with connection.schema_editor(atomic=False) as editor:
        operation.database_backwards("crm", editor, after, before)
    assert "customer_locale_concurrent" not in indexes()
