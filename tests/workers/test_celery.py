"""workers.celery: a worker draws no progress bars. Its stdout and stderr are Celery's logger at
WARNING, so a bar (transformers loading a model, converting the GGUF default; statsforecast;
implicit) came out as one warning per redraw in `make demo`'s log and the worker's."""

import json
import subprocess
import sys

from tests.conftest import ROOT, worker_env

# A worker process as Celery makes one: its start-up signal sent, then stdout and stderr
# redirected to the logger at WARNING, then a task body importing the libraries and drawing.
WORKER = """
import json, logging, os, sys
import django
django.setup()
from celery.signals import celeryd_init
from workers.celery import app
if sys.argv[1] == "worker":
    celeryd_init.send(sender="test@host", instance=None, conf=app.conf, options={})
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.levelname, record.getMessage()))
logger = logging.getLogger("celery.redirected")
logger.addHandler(Keep())
logger.propagate = False
out = sys.stdout
app.log.redirect_stdouts_to_logger(logger, loglevel=logging.WARNING)
from tqdm.auto import tqdm
for _ in tqdm(range(20), desc="Converting and de-quantizing GGUF tensors...", mininterval=0):
    pass
from transformers.utils import logging as hf_logging
for _ in hf_logging.tqdm(range(20), desc="Loading weights", mininterval=0):
    pass
print("a task's own print")
out.write(json.dumps(records))
"""


def run(as_what: str) -> list[tuple[str, str]]:
    env = worker_env({"DJANGO_SETTINGS_MODULE": "marketing_ai.settings"})
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, as_what],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [tuple(r) for r in json.loads(done.stdout)]


def test_a_worker_logs_no_progress_bar():
    records = run("worker")
    assert records == [("WARNING", "a task's own print")], records


def test_without_the_worker_setting_each_redraw_was_a_warning():
    """What the worker's setting prevents: the same bars outside a worker, redirected alike."""
    bars = [m for level, m in run("plain") if level == "WARNING" and "|" in m]
    assert any("GGUF tensors" in m for m in bars) and any("Loading weights" in m for m in bars)
    assert len(bars) > 10


def test_a_workers_log_leaves_out_the_frequent_ticks_lines_not_their_failures():
    import logging

    from workers.celery import QuietTicks, frequent_tasks

    ticks = frequent_tasks()
    assert {"campaigns.journeys.tasks.advance", "campaigns.tasks.sweep"} <= ticks
    assert "crm.tasks.models.retrain_nightly" not in ticks  # a crontab: once a night
    quiet = QuietTicks(ticks)

    def record(level: int, name: str) -> logging.LogRecord:
        args = ({"name": name, "id": "x", "runtime": 0.01, "return_value": None},)
        message = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"
        return logging.LogRecord("celery.app.trace", level, __file__, 1, message, args, None)

    assert not quiet.filter(record(logging.INFO, "campaigns.journeys.tasks.advance"))
    assert quiet.filter(record(logging.ERROR, "campaigns.journeys.tasks.advance"))
    assert quiet.filter(record(logging.INFO, "crm.tasks.models.train_churn"))
