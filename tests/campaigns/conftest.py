"""Campaign fixtures: the workspace, a local SMTP server per test (tests.campaigns.helpers.Sink)
and Django's e-mail pointed at it, tasks run in this process, and a resolver a test can script."""

import socket

import pytest

from tests.campaigns.helpers import Sink
from tests.crm.factories import WorkspaceFactory


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(slug="shop", name="Shop")


@pytest.fixture
def sink_factory(tmp_path):
    sinks = []

    def make(**kwargs) -> Sink:
        sinks.append(Sink(tmp_path, **kwargs))
        return sinks[-1]

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def smtp_settings(settings):
    """Points Django's e-mail at a sink and makes retries quick."""

    def use(sink: Sink) -> None:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.CAMPAIGN_RETRY_BASE_SECONDS = 0.05
        settings.CAMPAIGN_RETRY_MAX_SECONDS = 0.2

    return use


@pytest.fixture
def sends_in_this_process():
    """Tasks that state changes queue (resume, resend) run here, against this test's SMTP server,
    not in the suite's shared worker (which has no way to reach it)."""
    from workers.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch):
    """name -> list of answers, one used per lookup (the last one repeats); other names go to
    the real resolver, as do the IP literals urllib3 looks up when it connects."""
    table: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        answers = table.get(host.lower() if isinstance(host, str) else host)
        if answers is None:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table
