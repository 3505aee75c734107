"""Webhook destinations: public addresses only unless the operator allows
the private network; the connection goes to the address that was checked."""
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from services.notification import destinations, webhooks
from shared.db import transaction
from shared.errors import Invalid
from tests.support.ports import free_port


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"])
def test_private_loopback_link_local_and_odd_addresses_are_refused(address):
    assert destinations.allowed(address, allow_private=False) is False


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert destinations.allowed(address, allow_private=False) is True


def test_the_operator_can_allow_the_private_network_but_never_wildcards_or_multicast():
    assert destinations.allowed("127.0.0.1", allow_private=True) is True
    assert destinations.allowed("0.0.0.0", allow_private=True) is False
    assert destinations.allowed("224.0.0.1", allow_private=True) is False


def test_a_url_is_resolved_and_checked():
    with pytest.raises(destinations.ForbiddenDestination, match="WEBHOOK_ALLOW_PRIVATE"):
        destinations.resolve("http://localhost:8080/hook", allow_private=False)
    with pytest.raises(destinations.ForbiddenDestination):
        destinations.resolve("ftp://example.org/hook", allow_private=True)
    target = destinations.resolve("http://127.0.0.1:8080/hook?x=1", allow_private=True)
    assert (target.address, target.port, target.path) == ("127.0.0.1", 8080, "/hook?x=1")


def test_registering_refuses_a_forbidden_url_and_accepts_one_not_resolvable_yet():
    with pytest.raises(Invalid):
        webhooks.check_url("http://169.254.169.254/latest/meta-data/", allow_private=False)
    webhooks.check_url("https://hooks.invalid/receiver", allow_private=False)


class Redirecting(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/")
        self.end_headers()

    def log_message(self, *args):
        pass


def delivery_to(db, url):
    with transaction(db) as session:
        hook = webhooks.add(session, "conf", url)
    return SimpleNamespace(recipient=url, cause="webhook:h:r:1",
                           content={"hook_id": hook["id"], "payload": {"type": "test"}})


def test_a_send_checks_the_address_again_and_never_follows_a_redirect(db):
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        row = delivery_to(db, f"http://127.0.0.1:{port}/hook")
        with pytest.raises(webhooks.PermanentWebhookFailure, match="not a public address"):
            webhooks.post(db, row, allow_private=False)
        with pytest.raises(webhooks.WebhookFailure, match="302 .redirects are not followed"):
            webhooks.post(db, row, allow_private=True)
    finally:
        server.shutdown()
