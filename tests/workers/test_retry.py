"""Transient database refusals re-run the whole transaction: real deadlocks between two
PostgreSQL connections, a real "database is locked" from SQLite, and a bulk API write that loses
a deadlock and still answers 200."""

import logging
import sqlite3
import threading
import time

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from crm import bulk, services
from crm.models import Customer, Workspace
from tests.crm.factories import client_for
from workers import queues
from workers.models import TaskRun
from workers.retry import is_transient, retrying
from workers.runs import tracked_task

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="deadlock detection is PostgreSQL's"
)


def crossing_lockers(first: int, second: int, retried: bool) -> dict:
    """Two threads lock two workspace rows in opposite orders, meeting in the middle: one of them
    is the deadlock's victim. Returns each thread's outcome and how often each body ran."""
    barrier = threading.Barrier(2, timeout=15)
    runs: list[str] = []
    outcome: dict = {}

    def body(name: str, a: int, b: int) -> None:
        runs.append(name)
        Workspace.objects.select_for_update().get(pk=a)
        if runs.count(name) == 1:  # the first time only: a re-run goes straight through
            barrier.wait()
        Workspace.objects.select_for_update().get(pk=b)
        Workspace.objects.filter(pk=a).update(name=f"by {name}")

    def thread(name: str, a: int, b: int) -> None:
        try:
            if retried:
                retrying(lambda: body(name, a, b))
            else:
                with transaction.atomic():
                    body(name, a, b)
            outcome[name] = "ok"
        except Exception as exc:
            outcome[name] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=thread, args=("one", first, second)),
        threading.Thread(target=thread, args=("two", second, first)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return {"outcome": outcome, "runs": runs}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_retried_and_both_transactions_commit():
    a = Workspace.objects.create(slug="a", name="A").pk
    b = Workspace.objects.create(slug="b", name="B").pk

    plain = crossing_lockers(a, b, retried=False)
    failures = [v for v in plain["outcome"].values() if v != "ok"]
    assert len(failures) == 1 and isinstance(failures[0], OperationalError)
    assert is_transient(failures[0])  # SQLSTATE 40P01, the deadlock is real

    helped = crossing_lockers(a, b, retried=True)
    assert helped["outcome"] == {"one": "ok", "two": "ok"}
    assert len(helped["runs"]) == 3  # the victim's whole transaction ran a second time


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_bulk_write_that_loses_a_deadlock_is_run_again_and_answers_200(caplog):
    workspace = Workspace.objects.create(slug="acme", name="Acme")
    row = {"source": "shop", "external_id": "c1", "email": "c1@x.io", "first_name": "Ann"}
    services.customer_bulk_upsert(workspace=workspace, rows=[row])
    customer = Customer.objects.get(workspace=workspace)
    # One of the advisory locks the batch takes before it writes (crm.services.customers).
    batch_lock = f"customer:{workspace.pk}:{('email', 'c1@x.io')}"
    holding, done = threading.Event(), {}

    def other_writer() -> None:
        """Holds the customer's row, waits for the batch to queue behind it, then asks for a
        lock the batch holds: a cycle, and the batch (waiting longer) is the one refused."""
        try:
            with transaction.atomic():
                Customer.objects.filter(pk=customer.pk).update(first_name="Other")
                holding.set()
                deadline = time.monotonic() + 15
                with connection.cursor() as cursor:
                    while time.monotonic() < deadline:
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.05)
                bulk.lock_keys([batch_lock])
            done["other"] = "ok"
        except Exception as exc:
            done["other"] = exc
        finally:
            connection.close()

    caplog.set_level(logging.INFO, logger="workers.retry")
    thread = threading.Thread(target=other_writer)
    thread.start()
    assert holding.wait(15)
    api = client_for(workspace)
    answer = api.post("/api/v1/customers/bulk", {"rows": [{**row, "first_name": "Bea"}]})
    thread.join(30)
    assert done["other"] == "ok"
    assert answer.status_code == 200 and answer.json()["updated"] == 1
    assert any("transient database error" in r.getMessage() for r in caplog.records)
    customer.refresh_from_db()
    assert customer.first_name == "Bea"  # the batch ran again after the other writer committed


CROSSING: dict = {}  # what the task below meets: the rows, a barrier, how often it ran


@tracked_task(queue=queues.DEFAULT, name="tests.workers.test_retry.crossing_task")
def crossing_task(run, progress) -> dict:
    CROSSING["runs"] += 1
    with transaction.atomic():
        Workspace.objects.select_for_update().get(pk=CROSSING["a"])
        if CROSSING["runs"] == 1:
            CROSSING["barrier"].wait()
        Workspace.objects.select_for_update().get(pk=CROSSING["b"])
    return {"runs": CROSSING["runs"]}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_task_that_loses_a_deadlock_runs_its_body_again_and_succeeds():
    a = Workspace.objects.create(slug="a", name="A").pk
    b = Workspace.objects.create(slug="b", name="B").pk
    CROSSING.update(a=a, b=b, runs=0, barrier=threading.Barrier(2, timeout=15))

    def other() -> None:
        try:
            with transaction.atomic():
                Workspace.objects.select_for_update().get(pk=b)
                CROSSING["barrier"].wait()
                time.sleep(0.3)  # the task waits longer, so its deadlock check fires first
                Workspace.objects.select_for_update().get(pk=a)
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    run = TaskRun.objects.create(kind=crossing_task.name)
    crossing_task.apply(args=[str(run.pk)])
    thread.join(30)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.result == {"runs": 2}


def test_sqlite_database_is_locked_is_transient(tmp_path):
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as refused:
        other.execute("BEGIN IMMEDIATE")
    assert is_transient(refused.value)
    holder.close()
    other.close()


@pytest.mark.django_db(transaction=True)
def test_other_errors_are_raised_at_once():
    Workspace.objects.create(slug="taken", name="T")
    runs = []

    def duplicate() -> None:
        runs.append(1)
        Workspace.objects.create(slug="taken", name="T again")

    with pytest.raises(IntegrityError) as caught:
        retrying(duplicate)
    assert not is_transient(caught.value) and len(runs) == 1
