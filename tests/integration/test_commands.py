"""The commands as an operator meets them: ``make run``'s launcher and the
one-line errors when a dependency cannot be reached."""
import os
import signal
import subprocess
import sys

import requests

from tests.support.broker import Vhost
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.waiting import wait_until


def run_service(service, **env):
    full_env = {**os.environ, "VAR_DIR": env.pop("VAR_DIR"), "STARTUP_WAIT_SECONDS": "1", **env}
    return subprocess.run([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_an_unreachable_broker_is_one_clear_line(tmp_path):
    port = free_port()
    result = run_service("registration", VAR_DIR=str(tmp_path),
                         AMQP_URI=f"amqp://guest:secret@127.0.0.1:{port}/")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"amqp://guest:***@127.0.0.1:{port}/" in lines[0] and "secret" not in lines[0]
    assert "rabbitmq-server" in lines[0]


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    port = free_port()
    result = run_service("capacity", VAR_DIR=str(tmp_path),
                         CAPACITY_DATABASE_URL=f"postgresql://evreg:pw@127.0.0.1:{port}/capacity")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"postgresql://evreg:***@127.0.0.1:{port}/capacity" in lines[0]


def test_make_run_starts_everything_prints_the_key_and_stops_cleanly(tmp_path):
    vhost = Vhost().create()
    port = free_port()
    env = {**os.environ, "VAR_DIR": str(tmp_path), "AMQP_URI": vhost.amqp_uri,
           "GATEWAY_ADDRESS": f"127.0.0.1:{port}", "SMTP_PORT": str(free_port()),
           "PYTHONUNBUFFERED": "1"}
    for name in ("REGISTRATION", "CAPACITY", "NOTIFICATION"):
        env.pop(f"{name}_DATABASE_URL", None)
    env["METRICS_PORT"] = "0"
    launcher = subprocess.Popen([sys.executable, "-m", "shared.supervisor"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: _ready(port), 60, interval=0.5, message="the gateway")
        key = (tmp_path / "admin_api_key").read_text().strip()
        launcher.send_signal(signal.SIGINT)          # what Ctrl-C sends
        output, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        vhost.delete()
    assert launcher.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    assert f"admin API key: {key}" in output
    for service in ("gateway", "registration", "capacity", "notification"):
        assert f"{service} stopped" in output, output[-3000:]
    for service in ("registration", "capacity", "notification"):
        assert (tmp_path / f"{service}.db").exists()       # SQLite under var/ by default


def _ready(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/ready", timeout=3).status_code == 200
    except requests.RequestException:
        return False
