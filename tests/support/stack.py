"""The whole system for one test module: a vhost, an SMTP server, databases
(SQLite files or PostgreSQL), and the services started against them; and
``running_stack``, the body of a module fixture that starts and stops one."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import requests

from tests.support.broker import Vhost, rabbitmqctl
from tests.support.client import ApiClient
from tests.support.databases import PostgresDatabases, require_postgres
from tests.support.mail import SmtpServer
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess
from tests.support.waiting import wait_until

# A send lease of a few seconds (SEND_LEASE_SECONDS; 60 by default) for the
# stacks whose tests check "exactly once": a re-send after a lease runs out
# then falls inside their quiet windows, which must outlast it.
SEND_LEASE_SECONDS = 3.0


class Stack(ApiClient):
    """The whole system for one test module."""

    def __init__(self, tmp: Path, database: str = "sqlite", extra_env: dict | None = None):
        self.tmp = tmp
        self.database = database
        self.vhost = Vhost()
        self.smtp = SmtpServer()
        self.gateway_port = free_port()
        self.admin_key = "test-admin-key-" + uuid.uuid4().hex
        self.secret_key = "test-secret-" + uuid.uuid4().hex
        self.postgres = None
        self.processes: list[ServiceProcess] = []
        self.extra_env = extra_env or {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def env_for(self, service: str, **overrides) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
        env.update({
            "AMQP_URI": self.vhost.amqp_uri,
            "GATEWAY_ADDRESS": f"127.0.0.1:{self.gateway_port}",
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp.port),
            "SMTP_FROM": "events@example.org",
            "ADMIN_API_KEY": self.admin_key, "SECRET_KEY": self.secret_key,
            "PUBLIC_BASE_URL": self.base_url, "VAR_DIR": str(self.tmp / "var"),
            "METRICS_PORT": str(free_port()), "RATE_LIMIT_PER_MINUTE": "0",
            "REMINDER_POLL_SECONDS": "1", "PYTHONUNBUFFERED": "1",
        })
        for name in ("registration", "capacity", "notification"):
            env[f"{name.upper()}_DATABASE_URL"] = self.database_url(name)
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def database_url(self, name: str) -> str:
        if self.database == "postgres":
            return self.postgres.url(name)
        return f"sqlite:///{self.tmp / 'var' / (name + '.db')}"

    def start(self, services=("registration", "capacity", "notification", "gateway")):
        self.vhost.create()
        self.smtp.start()
        if self.database == "postgres":
            self.postgres = PostgresDatabases(["registration", "capacity", "notification"]).create()
        (self.tmp / "var").mkdir(parents=True, exist_ok=True)
        for name in services:
            self.start_service(name)
        self.wait_ready()
        return self

    def start_service(self, name: str, **env) -> ServiceProcess:
        index = sum(1 for p in self.processes if p.name == name)
        process = ServiceProcess(name, self.env_for(name, **env),
                                 self.tmp / f"{name}-{index}.log").start()
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float = 60.0):
        def ready():
            for process in self.processes:
                if not process.alive():
                    raise AssertionError(f"{process.name} exited:\n{self.logs(process.name)}")
            try:
                return requests.get(self.base_url + "/ready", timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_until(ready, timeout, interval=0.3, message="the gateway to be ready")

    def logs(self, name: str) -> str:
        return "\n".join(p.log_path.read_text(errors="replace")[-5000:]
                         for p in self.processes if p.name == name)

    def rabbitmqctl_list(self, what: str, *items: str, vhost: bool = True) -> list[list[str]]:
        """``rabbitmqctl list_<what> items`` (of this stack's vhost), one row a line."""
        scope = ["-p", self.vhost.name] if vhost else []
        listing = rabbitmqctl(f"list_{what}", *scope, "--no-table-headers", *items)
        return [line.split("\t") for line in listing.splitlines() if line.strip()]

    def queues(self) -> dict[str, tuple[int, int]]:
        """Each queue of the vhost: (messages ready, messages unacknowledged)."""
        return {name: (int(ready), int(unacked)) for name, ready, unacked in
                self.rabbitmqctl_list("queues", "name", "messages_ready",
                                      "messages_unacknowledged")}

    def unacked_by_port(self) -> dict[int, int]:
        """Messages unacknowledged on the vhost's AMQP channels, summed by the
        client's local port (a channel's name starts with the client address)."""
        found: dict[int, int] = {}
        for name, vhost, unacked in self.rabbitmqctl_list(
                "channels", "name", "vhost", "messages_unacknowledged", vhost=False):
            if vhost == self.vhost.name:
                port = int(name.split(" ")[0].rsplit(":", 1)[1])
                found[port] = found.get(port, 0) + int(unacked)
        return found

    def stop(self):
        for process in reversed(self.processes):
            if process.alive():
                process.stop()
        self.smtp.stop()
        self.vhost.delete()
        if self.postgres is not None:
            self.postgres.drop()


def running_stack(tmp_path_factory, name: str, database: str = "sqlite", replicas=(), **env):
    """A module fixture's body: the whole system, plus extra replicas, stopped after."""
    if database == "postgres":
        require_postgres()
    stack = Stack(tmp_path_factory.mktemp(name), database=database, extra_env=env or None)
    try:
        stack.start()
        for service in replicas:
            stack.start_service(service)
        if replicas:
            stack.wait_ready()
        yield stack
    finally:
        stack.stop()
