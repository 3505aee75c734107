"""docker-compose.yml as far as it can be checked without Docker: Debian's
docker-compose accepts it, every service's command is the entry point that
`make run-<service>` uses, and those commands, run here with the compose
environment pointed at local services, make a working system."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tests.support.broker import Vhost
from tests.support.databases import PostgresDatabases, require_postgres
from tests.support.mail import SmtpServer
from tests.support.paths import ROOT
from tests.support.tools import require_tool
from tests.support.waiting import wait_until

SERVICES = ("gateway", "registration", "capacity", "notification")
COMPOSE = shutil.which("docker-compose")


@pytest.fixture(scope="module")
def compose():
    require_tool(COMPOSE, "docker-compose")
    result = subprocess.run([COMPOSE, "-f", "docker-compose.yml", "config"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_accepts_the_file(compose):
    assert set(SERVICES) | {"rabbitmq", "postgres", "mailpit", "prometheus", "grafana"} <= set(compose["services"])
    for name in SERVICES:
        service = compose["services"][name]
        assert "healthcheck" in service, name
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert "container_name" not in service        # replicas: --scale
    assert "8000" in str(compose["services"]["gateway"]["ports"])


def test_each_compose_command_is_the_make_run_command(compose):
    for name in SERVICES:
        assert compose["services"][name]["command"] == ["python", "-m", f"services.{name}"]
        # Not as a sub-make of `make test`: that would print directory lines.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        dry_run = subprocess.run(["make", "--no-print-directory", "-n", f"run-{name}"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60, env=env
                                 ).stdout.strip().splitlines()[-1]
        assert dry_run.endswith(f"python -m services.{name}"), dry_run


def test_the_image_runs_as_a_user_with_an_exec_form_command():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "\nUSER evreg" in dockerfile
    assert 'CMD ["python", "-m", "services.gateway"]' in dockerfile


def test_the_compose_commands_run_here_as_a_working_system(compose, tmp_path):
    require_postgres()
    vhost, smtp = Vhost().create(), SmtpServer().start()
    databases = PostgresDatabases(["registration", "capacity", "notification"]).create()
    processes = []
    try:
        for name in ("registration", "capacity", "notification", "gateway"):
            env = dict(compose["services"][name]["environment"])
            env["AMQP_URI"] = f"amqp://guest:guest@127.0.0.1:5672/{vhost.name}"
            for service in ("registration", "capacity", "notification"):
                env[f"{service.upper()}_DATABASE_URL"] = databases.url(service)
            env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port), VAR_DIR=str(tmp_path),
                       ADMIN_API_KEY="compose-key", PUBLIC_BASE_URL="http://127.0.0.1:8000",
                       GATEWAY_ADDRESS="127.0.0.1:8000")
            command = compose["services"][name]["command"]
            command = [sys.executable if command[0] == "python" else command[0], *command[1:]]
            log = open(tmp_path / f"{name}.log", "wb")
            processes.append((name, subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log,
                                                     env={**os.environ, **env},
                                                     start_new_session=True)))
        ports = {name: compose["services"][name]["environment"]["METRICS_PORT"] for name in SERVICES}

        def ready(port):
            try:
                return requests.get(f"http://127.0.0.1:{port}/ready", timeout=3).status_code == 200
            except requests.RequestException:
                return False
        for name in SERVICES:
            wait_until(lambda name=name: ready(ports[name]), 60, interval=0.5, message=f"{name} ready")
        event = {"slug": "compose-check", "title": {"en": "Compose"}, "timezone": "UTC",
                 "languages": ["en"], "format": "online", "capacity": 5,
                 "sessions": [{"slug": "s", "title": {"en": "S"}, "starts_at": "2027-01-01T10:00:00Z",
                               "ends_at": "2027-01-01T11:00:00Z"}]}
        assert requests.post("http://127.0.0.1:8000/api/v1/events", json=event, timeout=20,
                             headers={"Authorization": "Bearer compose-key"}).status_code == 201
        answer = requests.post("http://127.0.0.1:8000/api/v1/events/compose-check/registrations",
                               json={"name": "C", "email": "compose@example.org"}, timeout=20).json()
        smtp.mailbox.wait_for("compose@example.org", timeout=30)
        assert answer["status"] == "pending"
        log_line = (tmp_path / "capacity.log").read_text().splitlines()[0]
        assert log_line.startswith("{")                      # LOG_FORMAT=json from compose
    finally:
        for _, process in processes:
            process.send_signal(signal.SIGTERM)
        for _, process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        smtp.stop()
        vhost.delete()
        databases.drop()
        time.sleep(0.5)
    assert all(process.returncode == 0 for _, process in processes), \
        [(name, process.returncode) for name, process in processes]
