"""Which mode this process runs in (MARKETING_AI_ENV), chosen on purpose and said out loud.

The mode decides whether the unsafe one-machine defaults (DEBUG, a generated secret key, a
SQLite file, an embedded Redis) are allowed, so it is never guessed: an unset MARKETING_AI_ENV
stops every process with a message saying what to set. The one exception is the test tooling
(pytest, `manage.py test`), which runs in test mode by itself, so that `pytest` works with
nothing set. Each process then says its mode in the first lines of its log (`banner`).
"""

import logging
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MODES = ("development", "production", "test")

UNSET = (
    "MARKETING_AI_ENV is not set. Choose the mode on purpose: MARKETING_AI_ENV=production for a "
    "real installation (refuses the unsafe defaults: needs SECRET_KEY and ALLOWED_HOSTS), or "
    "MARKETING_AI_ENV=development for one machine with DEBUG on, a SQLite file and an embedded "
    "Redis (`make demo` sets it). Put it in the environment or in the .env file beside manage.py."
)


def resolve(value: str, *, environ=os.environ, argv: list[str] | None = None) -> tuple[str, str]:
    """(mode, where it came from) for the MARKETING_AI_ENV value given ("" when unset).

    Raises ImproperlyConfigured for an unknown value, or when it is unset outside the test
    tooling.
    """
    argv = sys.argv if argv is None else argv
    if value:
        if value not in MODES:
            raise ImproperlyConfigured(
                f"MARKETING_AI_ENV must be development, production or test, not {value!r}"
            )
        return value, f"MARKETING_AI_ENV={value}"
    # pytest sets PYTEST_VERSION for the whole session (and the processes that tests start).
    if "PYTEST_VERSION" in environ:
        return "test", "MARKETING_AI_ENV unset, under pytest"
    if argv[:1] and Path(argv[0]).name == "manage.py" and argv[1:2] == ["test"]:
        return "test", "MARKETING_AI_ENV unset, under manage.py test"
    raise ImproperlyConfigured(UNSET)


def banner() -> str:
    """One line for the top of a log: the mode, where it came from, and what it implies."""

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        db = f"SQLite file {database['NAME']}"
    else:  # host and name only: the URL may carry a password
        vendor = database["ENGINE"].rsplit(".", 1)[-1]
        db = f"{vendor} {database.get('HOST') or 'localhost'}/{database['NAME']}"
    redis = (
        f"embedded Redis on port {settings.EMBEDDED_REDIS_PORT}"
        if settings.EMBEDDED_REDIS
        else "Redis from REDIS_URL"
    )
    parts = [f"DEBUG {'on' if settings.DEBUG else 'off'}", db, redis]
    if settings.MARKETING_AI_ENV != "production":
        parts.append(f"data in {settings.DATA_DIR}; not for production")
    return (
        f"marketing_ai running in {settings.MARKETING_AI_ENV} mode "
        f"({settings.MARKETING_AI_ENV_SOURCE}): {', '.join(parts)}"
    )


def log_banner(process: str) -> None:
    """Logs `banner()` for `process` (web, worker, beat): a warning outside production, so that
    a development setup that reached a real server is seen even with LOG_LEVEL=WARNING."""
    level = logging.INFO if settings.MARKETING_AI_ENV == "production" else logging.WARNING
    logging.getLogger("marketing_ai.mode").log(level, "%s: %s", process, banner())
