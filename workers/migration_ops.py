"""Index migrations on the big tables, built without locking out writes.

The rule (tests/test_migrations.py holds it for every migration written from now on): an index
on a table in BIG_TABLES is added with `AddIndexConcurrently` from this module, in a migration
with `atomic = False`, one index per migration. On PostgreSQL it runs CREATE INDEX CONCURRENTLY:
the table takes reads and writes while the index builds (a plain CREATE INDEX blocks every write
to a ten-million-row events table for minutes). Elsewhere (SQLite) it is a plain AddIndex.
The same holds for a new field with an index (a ForeignKey has one unless db_index=False): add
the field without it, then the index with AddIndexConcurrently.

If a concurrent build fails (a duplicate in a unique index, a cancelled statement), PostgreSQL
leaves an INVALID index behind: drop it (`DROP INDEX CONCURRENTLY name`) and migrate again.
"""

from django.contrib.postgres import operations as postgres
from django.db.migrations import AddIndex, RemoveIndex, RunPython
from django.utils import timezone

# app_label.model_name of the tables that grow with the customer base and its history.
BIG_TABLES = frozenset(
    {
        "crm.customer",
        "crm.externalidentity",
        "crm.consent",
        "crm.event",
        "crm.order",
        "crm.orderline",
        "crm.segmentmembership",
        "crm.customerscore",
        "crm.recommendation",
        "campaigns.message",
    }
)


def _postgres(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL (the migration needs `atomic = False`); a plain
    index elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL (the migration needs `atomic = False`); a plain
    drop elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


def rename_stored_tasks(renamed: dict[str, str]) -> RunPython:
    """A data migration for tasks that moved: a task's name follows its module, and the names
    stored under the old one are rewritten (both ways): TaskRun.kind (the run sweeper sends a
    run by its kind) and django-celery-beat's PeriodicTask.task (entries staff made or retimed).
    """

    def rename(apps, names: dict[str, str]) -> None:
        TaskRun = apps.get_model("workers", "TaskRun")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        beat_changed = 0
        for old, new in names.items():
            TaskRun.objects.filter(kind=old).update(kind=new)
            beat_changed += PeriodicTask.objects.filter(task=old).update(task=new)
        if beat_changed:
            # A running beat re-reads its schedule when this moves (the model's save signal
            # does it for edits in the admin; a queryset update sends none).
            PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
            PeriodicTasks.objects.update_or_create(
                ident=1, defaults={"last_update": timezone.now()}
            )

    back = {new: old for old, new in renamed.items()}
    return RunPython(lambda apps, _: rename(apps, renamed), lambda apps, _: rename(apps, back))


def vendor_sql(*, postgres_up, postgres_down, sqlite_up, sqlite_down) -> RunPython:
    """A RunPython that runs the statements written for the database it migrates (PostgreSQL
    or SQLite: a string or a list of them each way); any other database is refused, since the
    features these carry (triggers) would silently be missing there."""

    def run(schema_editor, postgres, sqlite) -> None:
        vendor = schema_editor.connection.vendor
        statements = {"postgresql": postgres, "sqlite": sqlite}.get(vendor)
        if statements is None:
            raise NotImplementedError(f"no statements for {vendor}")
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement)

    return RunPython(
        lambda apps, editor: run(editor, postgres_up, sqlite_up),
        lambda apps, editor: run(editor, postgres_down, sqlite_down),
    )
