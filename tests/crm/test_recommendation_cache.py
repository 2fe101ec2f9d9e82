"""crm.recommendation_cache when Redis is not there: `make demo` imports before `manage.py up`
starts the embedded Redis, and each import said "could not invalidate cached recommendations"
as a warning. A Redis not running is one INFO line per outage saying what it means; a real
server, stopped and started again, shows the line coming back with the next outage."""

import logging

import pytest
from django.db import transaction

from crm import recommendation_cache
from crm.importers import online_retail
from tests.conftest import free_port

pytestmark = pytest.mark.django_db

LOGGER = "crm.recommendation_cache"
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
LINES = [
    "489434,85048,CHRISTMAS LIGHTS,12,12/01/2009 07:45,6.95,13085.0,United Kingdom",
    "489434,79323P,PINK CHERRY LIGHTS,12,12/01/2009 07:45,6.75,13085.0,United Kingdom",
    "489435,22350,CAT BOWL,12,12/01/2009 07:46,2.55,13086.0,France",
]


def records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO]


def test_an_import_before_redis_is_up_says_so_once_at_info(
    workspace, settings, tmp_path, caplog, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    path = tmp_path / "online_retail.csv"
    path.write_text(HEADER + "\n".join(LINES) + "\n")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for _ in range(2):  # make demo's commands import, then add contacts, carts, ...
        with django_capture_on_commit_callbacks(execute=True):
            summary = online_retail.import_file(workspace=workspace, path=path)
        with django_capture_on_commit_callbacks(execute=True):
            recommendation_cache.customers_ordered(workspace_id=workspace.pk, customer_ids={1})
    assert summary.rows_read == 3
    (line,) = records(caplog)
    assert line.levelno == logging.INFO, line.getMessage()
    message = line.getMessage()
    port = settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0]
    assert f"Redis is not running at 127.0.0.1:{port}" in message
    assert f"expire within {settings.RECOMMENDATION_CACHE_SECONDS} s" in message
    assert [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.DEBUG]


@pytest.mark.django_db(transaction=True)
def test_each_outage_of_a_real_redis_is_told_once(workspace, own_redis, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    def write() -> None:
        with transaction.atomic():
            recommendation_cache.recommendations_changed(workspace_id=workspace.pk)

    write()
    assert not records(caplog)  # Redis is up: the generation moved on, nothing to say
    own_redis.stop()
    write()
    write()
    assert [r.levelno for r in records(caplog)] == [logging.INFO]
    own_redis.start()
    write()  # reaches it again: the next outage is a new one
    own_redis.stop()
    write()
    assert [r.levelno for r in records(caplog)] == [logging.INFO, logging.INFO]
