"""Running the real system for tests: the four services as subprocesses (the
same ``python -m services.<name>`` commands ``make run-<service>`` uses) in a
RabbitMQ vhost of their own, with SQLite or PostgreSQL databases of their own,
and a real SMTP server (aiosmtpd) that keeps what it receives."""
from __future__ import annotations

import email
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


# -- SMTP ---------------------------------------------------------------------------
class Mailbox:
    """An aiosmtpd handler that keeps every message, parsed."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Received-At"] = repr(time.time())
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def by_recipient(self) -> dict:
        """Every message, grouped by the address it was sent to."""
        grouped = {}
        with self.lock:
            for message in self.messages:
                for address in message["To"].addresses:
                    grouped.setdefault(address.addr_spec, []).append(message)
        return grouped

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list:
        return wait_until(lambda: len(self.to(address)) >= count and self.to(address), timeout,
                          message=f"{count} message(s) to {address}")


class SmtpServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


# -- broker -------------------------------------------------------------------------
def rabbitmqctl(*args) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class Vhost:
    def __init__(self):
        self.name = f"evreg-test-{uuid.uuid4().hex[:8]}"

    def create(self):
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self):
        try:
            rabbitmqctl("delete_vhost", self.name)
        except Exception:
            pass

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.name}"


# -- databases ------------------------------------------------------------------------
def postgres_available() -> bool:
    try:
        import psycopg2
        psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


class PostgresDatabases:
    def __init__(self, names):
        self.names = {name: f"evreg_test_{name}_{uuid.uuid4().hex[:8]}" for name in names}

    def _admin(self, sql):
        import psycopg2
        connection = psycopg2.connect(POSTGRES_ADMIN_URL)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create(self):
        for database in self.names.values():
            self._admin(f'CREATE DATABASE "{database}"')
        return self

    def url(self, name) -> str:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{self.names[name]}"

    def drop(self):
        for database in self.names.values():
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            except Exception:
                pass


# -- the services -----------------------------------------------------------------------
class ServiceProcess:
    def __init__(self, name: str, env: dict, log_path: Path):
        self.name, self.env, self.log_path = name, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"],
                                        cwd=ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def kill(self):
        self.process.kill()
        self.process.wait()
        self.log.close()


class Stack:
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

    def stop(self):
        for process in reversed(self.processes):
            if process.alive():
                process.stop()
        self.smtp.stop()
        self.vhost.delete()
        if self.postgres is not None:
            self.postgres.drop()

    # -- the API, as a client uses it ---------------------------------------------------
    def admin_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def create_event(self, **fields) -> dict:
        document = event_document(**fields)
        response = requests.post(f"{self.base_url}/api/v1/events", json=document,
                                 headers=self.admin_headers(), timeout=20)
        assert response.status_code == 201, response.text
        return document

    def register(self, slug: str, expect: int = 202, headers: dict | None = None, **fields):
        body = {"name": "Attendee", "email": f"{uuid.uuid4().hex[:10]}@example.org", **fields}
        response = requests.post(f"{self.base_url}/api/v1/events/{slug}/registrations", json=body,
                                 headers=headers or {}, timeout=30)
        assert response.status_code == expect, response.text
        return response.json()

    def register_in_turn(self, slug: str, **fields) -> dict:
        """Register and wait for the decision. Requests sent back to back can
        be decided in either order (docs/reliability.md): a test that relies
        on the order lets each be decided before sending the next."""
        answer = self.register(slug, **fields)
        wait_until(lambda: self.status(answer, wait=5)["status"] != "pending", 20,
                   message="the seat decision")
        return answer

    def status(self, registration: dict, wait: int = 0) -> dict:
        response = requests.get(f"{self.base_url}/api/v1/registrations/{registration['id']}",
                                params={"token": registration["token"], "wait": wait}, timeout=40)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_status(self, registration: dict, status: str, timeout: float = 20.0) -> dict:
        return wait_until(lambda: (s := self.status(registration))["status"] == status and s,
                          timeout, interval=0.2, message=f"status {status}")


def event_document(**fields) -> dict:
    document = {
        "slug": f"event-{uuid.uuid4().hex[:8]}",
        "title": {"en": "Diaspora Conference", "ar": "مؤتمر الجاليات", "fr": "Conférence de la diaspora"},
        "timezone": "Europe/Istanbul",
        "languages": ["en", "ar", "fr"],
        "format": "online",
        "join_url": "https://meet.example.org/diaspora",
        "capacity": 10,
        "waitlist": True,
        "sessions": [{"slug": "day-1", "title": {"en": "Day 1"},
                      "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"}],
        "reminders": ["P1D"],
    }
    document.update(fields)
    return document


def clean_tmp(path: Path):
    shutil.rmtree(path, ignore_errors=True)


# -- what the tests need ------------------------------------------------------------------
def require_postgres() -> None:
    """make test starts PostgreSQL: its absence is a failure, not a skip."""
    import pytest
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}; "
                    "make test starts it (tests/start-services.sh)")


def require_tool(path: str | None, package: str) -> str:
    """make test installs these from Debian's packages: absence is a failure."""
    import pytest
    if not path:
        pytest.fail(f"{package} is not installed; make test installs it (tests/install-tools.sh)")
    return path


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
