"""The gateway in this process: its real container, routes and web server,
with the three services it calls replaced by stubs, driven by werkzeug's
test client through the server's own WSGI app (no socket, no broker)."""
import dataclasses
from types import SimpleNamespace

import pytest
from nameko.containers import ServiceContainer
from nameko.extensions import iter_extensions
from nameko.testing.services import replace_dependencies
from werkzeug.test import Client

from services.gateway.routing import ApiServer
from services.gateway.service import GatewayService
from shared.config import Settings
from shared.errors import NotAuthenticated
from tests.support.ports import free_port

ADMIN_KEY = "test-admin-key"
SECRET_KEY = "test-secret-key"
SERVICES = ("registration", "capacity", "notification")
# What registration says the installation key is (organisations.INSTALLATION).
INSTALLATION = {"key_id": "installation", "key_name": "installation key", "organisation": None,
                "scopes": ["events", "registrations", "announce", "check-in", "keys"],
                "events": None}


def keys_known_to_registration(key, scopes, slug=None, registration_id=None):
    """Registration's ``access`` knowing no key but the installation's (None)."""
    if key is not None:
        raise NotAuthenticated("this key is unknown or was revoked")
    return INSTALLATION


@pytest.fixture
def start_gateway(monkeypatch):
    """``start_gateway(**settings)``: a started gateway; ``.client``, and
    ``.registration``, ``.capacity``, ``.notification`` (MagicMocks)."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    containers = []

    def start(**overrides):
        settings = dataclasses.replace(Settings.from_env("gateway"), **overrides)
        config = {**settings.nameko_config(), "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
        container = ServiceContainer(GatewayService, config)
        # replace_dependencies leaves the proxies' reply listener behind: it
        # would connect to a broker, and without eventlet's monkey patching
        # its blocking read would stall this process.
        for provider in list(container.dependencies):
            if provider.attr_name in SERVICES:
                container.subextensions.difference_update(iter_extensions(provider))
        stubs = dict(zip(SERVICES, replace_dependencies(container, *SERVICES)))
        # What notification says when nobody unsubscribed and mail goes.
        stubs["registration"].access.side_effect = keys_known_to_registration
        stubs["notification"].mail_problem.return_value = None
        stubs["notification"].reach_of_event.return_value = {}
        stubs["notification"].message_counts.return_value = {
            "queued": 0, "sent": 0, "failed": 0, "withdrawn": 0, "undeliverable": 0,
            "unsubscribed": 0}
        stubs["notification"].reach_of_registration.return_value = {"unsubscribed_at": None,
                                                                    "undeliverable": None}
        container.start()
        containers.append(container)
        server = next(e for e in container.extensions if isinstance(e, ApiServer))
        return SimpleNamespace(client=Client(server.get_wsgi_app()), settings=settings,
                               container=container, **stubs)

    yield start
    for container in containers:
        container.stop()


@pytest.fixture
def gateway(start_gateway):
    return start_gateway()
