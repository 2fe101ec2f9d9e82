"""campaigns.outbound: outbound HTTP cannot be pointed inside our network (SSRF): refused at
registration, refused again at delivery on the address actually connected to, no redirects, no
response bodies kept.

Only the resolver (socket.getaddrinfo) is replaced, to give test names the answers an attacker's
DNS would; everything else is the real code talking to real local HTTP(S) servers."""

import ipaddress
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.utils import timezone

from campaigns import outbound
from campaigns.channels import Outcome, Outgoing
from campaigns.channels.http import SmsChannel
from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.services.webhooks import deliver_due, webhook_emit
from tests.campaigns.factories import client_for
from tests.campaigns.helpers import PUBLIC


class Receiver(BaseHTTPRequestHandler):
    """Answers every POST with the class's `answer`: (status, headers, body)."""

    answer = (204, {}, b"")
    received: list = []

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.path, dict(self.headers)))
        status, headers, body = self.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A local HTTP server (its own Receiver subclass, so two do not share a log)."""
    servers = []

    def start(answer=(204, {}, b"")):
        handler = type("R", (Receiver,), {"answer": answer, "received": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_port, handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def local_allowed(settings) -> None:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


def emit(workspace) -> WebhookDelivery:
    webhook_emit(workspace_id=workspace.pk, event="message.sent", data={"message": "m1"})
    return WebhookDelivery.objects.latest("id")


# --- registration ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8000/hook",
        "https://127.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://[::ffff:a00:1]/hook",  # IPv4-mapped 10.0.0.1
        "https://[fec0::1]/hook",  # deprecated site-local, which Python 3.11 calls global
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://internal.example.test/hook",  # a name pointing at a private address
    ],
)
def test_registration_refuses_internal_addresses(workspace, settings, dns, url):
    settings.WEBHOOK_ALLOW_HTTP = True  # so what is refused is the address, not the scheme
    dns["internal.example.test"] = ["192.168.1.20"]
    api = client_for(workspace)
    response = api.post("/api/v1/webhooks", {"url": url})
    assert response.status_code == 400, response.content
    assert "address" in response.json()["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_registration_needs_https_and_a_resolving_public_host(workspace, dns):
    dns["hooks.example.com"] = [PUBLIC]
    api = client_for(workspace)
    plain = api.post("/api/v1/webhooks", {"url": "http://hooks.example.com/hook"})
    assert plain.status_code == 400 and "https" in plain.json()["url"][0]
    unknown = api.post("/api/v1/webhooks", {"url": "https://nowhere.invalid/hook"})
    assert unknown.status_code == 400 and "resolve" in unknown.json()["url"][0]
    made = api.post("/api/v1/webhooks", {"url": "https://hooks.example.com/hook"})
    assert made.status_code == 201
    # Changing the URL later is checked the same way.
    hook = made.json()["id"]
    moved = api.patch(f"/api/v1/webhooks/{hook}", {"url": "https://169.254.169.254/"})
    assert moved.status_code == 400 and "url" in moved.json()
    assert WebhookEndpoint.objects.get().url == "https://hooks.example.com/hook"


@pytest.mark.django_db
def test_registration_of_local_addresses_when_the_operator_allows_them(workspace, settings):
    local_allowed(settings)
    api = client_for(workspace)
    assert api.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}).status_code == 201


@pytest.mark.django_db
def test_admin_form_refuses_internal_addresses(admin_client, workspace):
    response = admin_client.post(
        "/admin/campaigns/webhookendpoint/add/",
        {
            "workspace": workspace.pk,
            "url": "https://169.254.169.254/latest/meta-data/",
            "secret": "s" * 20,
            "events": "[]",
            "active": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "link-local address" in errors["url"][0]
    assert not WebhookEndpoint.objects.exists()


# --- delivery -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("own_redis")  # the delivery run queued on commit reaches no worker
def test_delivery_is_refused_when_the_name_points_inside_after_registration(
    workspace, settings, dns, receiver
):
    settings.WEBHOOK_ALLOW_HTTP = True
    port, sink = receiver()
    dns["hooks.example.com"] = [PUBLIC]
    api = client_for(workspace)
    url = f"http://hooks.example.com:{port}/hook"
    assert api.post("/api/v1/webhooks", {"url": url}).status_code == 201
    dns["hooks.example.com"] = ["127.0.0.1"]  # the attacker's DNS now answers loopback
    delivery = emit(workspace)
    assert deliver_due(timeout=2) == {"delivered": 0, "retrying": 1, "failed": 0}
    delivery.refresh_from_db()
    assert delivery.error == "refused: loopback address" and delivery.status_code is None
    assert sink.received == []
    # The same row reaches the sink once the operator allows local networks.
    local_allowed(settings)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliver_due(timeout=2)["delivered"] == 1
    assert sink.received[0][1]["Host"] == f"hooks.example.com:{port}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("own_redis")  # the delivery run queued on commit reaches no worker
def test_connection_goes_to_the_checked_address_not_a_second_lookup(
    workspace, settings, dns, receiver
):
    """DNS rebinding: the first answer (the one checked) is public, every later one loopback.
    Checking and then letting the HTTP client resolve again would reach the sink."""
    settings.WEBHOOK_ALLOW_HTTP = True
    port, sink = receiver()
    WebhookEndpoint.objects.create(
        workspace=workspace, url=f"http://rebind.example.com:{port}/", secret="s" * 20
    )
    dns["rebind.example.com"] = [PUBLIC, "127.0.0.1"]
    emit(workspace)
    assert deliver_due(timeout=1)["retrying"] == 1
    assert sink.received == []
    assert WebhookDelivery.objects.get().error in ("timeout", "connection failed")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("own_redis")  # the delivery run queued on commit reaches no worker
def test_redirects_are_not_followed(workspace, settings, receiver):
    local_allowed(settings)
    inner_port, inner = receiver()
    port, _ = receiver((302, {"Location": f"http://127.0.0.1:{inner_port}/admin"}, b""))
    WebhookEndpoint.objects.create(
        workspace=workspace, url=f"http://127.0.0.1:{port}/hook", secret="s" * 20
    )
    delivery = emit(workspace)
    assert deliver_due(timeout=2) == {"delivered": 0, "retrying": 1, "failed": 0}
    delivery.refresh_from_db()
    assert delivery.status_code == 302 and delivery.error == "HTTP 302: redirect not followed"
    assert inner.received == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("own_redis")  # the delivery run queued on commit reaches no worker
def test_the_answers_body_is_never_stored_or_shown(workspace, settings, receiver):
    local_allowed(settings)
    secret_page = b"root:x:0:0:internal-secret-page"
    port, _ = receiver((500, {"Content-Type": "text/plain"}, secret_page))
    api = client_for(workspace)
    made = api.post("/api/v1/webhooks", {"url": f"http://127.0.0.1:{port}/hook"}).json()
    emit(workspace)
    deliver_due(timeout=2)
    log = api.get(f"/api/v1/webhooks/{made['id']}/deliveries")
    assert log.status_code == 200
    (row,) = log.json()["results"]
    assert row["status_code"] == 500 and row["error"] == "HTTP 500"
    assert b"internal-secret" not in log.content
    assert "internal-secret" not in WebhookDelivery.objects.get().error


@pytest.mark.parametrize("url", ["https://2130706433/", "https://0x7f.1/", "https://127.1/"])
def test_odd_spellings_of_loopback_are_refused_once_resolved(settings, url):
    """Forms Django's URL validator already refuses, in case a URL reaches us another way
    (a channel's URL from the environment): the check is on what the name resolves to."""
    assert outbound.url_problem(url).startswith("loopback address")


def test_the_sms_gateway_is_guarded_the_same_way(settings, receiver):
    port, gateway = receiver((500, {}, b"internal-secret-page"))
    settings.CAMPAIGN_HTTP_CHANNELS = {"sms": {"url": f"http://127.0.0.1:{port}/sms"}}
    outgoing = Outgoing(
        message_id=1, token="ab" * 16, address="+447000000001", subject="", html="", text="Hi"
    )

    def send() -> Outcome:
        with SmsChannel() as channel:
            return channel.send(outgoing, lambda *args: None)

    assert send().reason.startswith("refused: http scheme")
    settings.WEBHOOK_ALLOW_HTTP = True
    assert send() == Outcome("retry", "refused: loopback address")
    assert gateway.received == []
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    assert send() == Outcome("retry", "HTTP 500")  # reached, and its body is not kept
    assert len(gateway.received) == 1


# --- TLS with a pinned address --------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for hooks.example.test;
    returns (port, certificate file, SNI names seen, Receiver class)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=hooks.example.test",
            "-addext",
            "subjectAltName=DNS:hooks.example.test",
        ],
        check=True,
        capture_output=True,
    )
    names: list = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    handler = type("R", (Receiver,), {"answer": (200, {}, b"ok"), "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, str(cert), names, handler
    server.shutdown()
    server.server_close()


def test_tls_keeps_the_name_for_sni_and_the_certificate(settings, dns, tls_server):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    port, cert, names, handler = tls_server
    dns["hooks.example.test"] = ["127.0.0.1"]
    dns["other.example.test"] = ["127.0.0.1"]
    with outbound.session() as s:
        ok = outbound.post(
            s,
            f"https://hooks.example.test:{port}/h",
            data=b"{}",
            headers={},
            timeout=5,
            verify=cert,
        )
        assert ok.status_code == 200
        assert names == ["hooks.example.test"]
        assert handler.received[0][1]["Host"] == f"hooks.example.test:{port}"
        # Same address, another name: the certificate is checked for the name, so it fails.
        with pytest.raises(requests.exceptions.SSLError):
            outbound.post(
                s,
                f"https://other.example.test:{port}/h",
                data=b"{}",
                headers={},
                timeout=5,
                verify=cert,
            )


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("::ffff:169.254.169.254", "link-local address"),
        ("2002:a00:1::", "private address"),  # 6to4 around 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local address"),  # NAT64 around 169.254.169.254
        ("fe80::1", "link-local address"),
        ("fd00::1", "private address"),
        ("fec0::1", "site-local address"),
        ("feff:ffff::1", "site-local address"),
        ("::", "unspecified address"),
        ("ff02::1", "multicast address"),
        ("240.0.0.1", "private address"),  # Python counts the reserved 240/4 as private too
        ("198.51.100.7", "private address"),  # documentation range
        (PUBLIC, None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_address_problem(address, problem):
    assert outbound.address_problem(ipaddress.ip_address(address)) == problem


# --- what older versions stored --------------------------------------------------------------


@pytest.mark.django_db
def test_the_upgrade_scrubs_bodies_logged_before(workspace):
    """campaigns/migrations/0003 run on rows in the form older versions wrote."""
    import importlib

    from django.apps import apps

    from campaigns.models import Campaign, Message
    from crm.models import Customer

    scrub = importlib.import_module("campaigns.migrations.0003_outbound_reasons").scrub
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, url="https://h.example/", secret="s" * 20
    )
    old = {
        "HTTP 500: root:x:0:0:internal-secret-page": "HTTP 500",
        "ReadTimeout: HTTPConnectionPool(host='10.0.0.5', port=80): Read timed out.": "timeout",
        "ConnectionError: HTTPConnectionPool(host='10.0.0.5', port=80): Max retries": (
            "connection failed"
        ),
        "refused: loopback address": "refused: loopback address",
    }
    for error in old:
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event="message.sent",
            payload={},
            next_attempt_at=timezone.now(),
            error=error,
        )
    person = Customer.objects.create(workspace=workspace, phone="+447000000001")
    sms = Campaign.objects.create(workspace=workspace, name="sms", channel="sms")
    email = Campaign.objects.create(workspace=workspace, name="mail", channel="email")
    now = timezone.now()
    texted = Message.objects.create(
        campaign=sms,
        customer=person,
        send_at=now,
        reason="gave up after 6 attempts: HTTP 503: internal-secret",
    )
    mailed = Message.objects.create(
        campaign=email, customer=person, send_at=now, reason="SMTP 550: no such user"
    )
    scrub(apps, None)
    assert sorted(WebhookDelivery.objects.values_list("error", flat=True)) == sorted(old.values())
    texted.refresh_from_db(), mailed.refresh_from_db()
    assert texted.reason == "gave up after 6 attempts: HTTP 503"
    assert mailed.reason == "SMTP 550: no such user"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://1.1.1.1:0/", "port 0"),
        ("https://1.1.1.1:00/hook", "port 0"),
        ("https://u:p@1.1.1.1/", "user name or password"),
        ("https://u@1.1.1.1/", "user name or password"),
        ("https://@1.1.1.1/", "user name or password"),
        ("https://u:p@hooks.example.com:8443/hook", "user name or password"),
    ],
)
def test_registration_refuses_a_port_or_credentials_that_cannot_be_right(
    workspace, dns, url, problem
):
    """Found by an outside tester: port 0 was accepted (nothing can listen there), and
    user:password@ was stored and echoed back in every answer with the endpoint."""
    dns["hooks.example.com"] = [PUBLIC]
    assert problem in outbound.url_problem(url)
    api = client_for(workspace)
    response = api.post("/api/v1/webhooks", {"url": url})
    assert response.status_code == 400, response.content
    assert "url" in response.json()  # ours, or Django's URL check first for "https://@host/"
    assert b"u:p" not in response.content
    assert not WebhookEndpoint.objects.exists()
    # The same public host with a usable port and no credentials is accepted.
    assert outbound.url_problem("https://1.1.1.1:8443/hook") is None
    assert outbound.url_problem("https://hooks.example.com/a@b") is None  # '@' in the path
