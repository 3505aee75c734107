"""What ops and monitoring see: Prometheus metrics that promtool accepts on
every service, a dashboard whose every query names an exported metric, JSON
logs that carry one correlation id from the HTTP request to the email, and
readiness on every service."""
import json
import re
import shutil
import subprocess
import uuid

import pytest
import requests

from tests.support.paths import ROOT
from tests.support.stack import Stack
from tests.support.tools import require_tool

PROMTOOL = shutil.which("promtool")
SERVICES = ("gateway", "registration", "capacity", "notification")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("observability"), extra_env={"LOG_FORMAT": "json"})
    try:
        stack.start()
        event = stack.create_event(capacity=1)
        stack.trace = "trace-" + uuid.uuid4().hex
        stack.traced = stack.register_in_turn(event["slug"], email="traced@example.org",
                                              headers={"X-Request-Id": stack.trace})
        stack.register(event["slug"], email="second@example.org")
        stack.smtp.mailbox.wait_for("traced@example.org")
        stack.smtp.mailbox.wait_for("second@example.org")
        yield stack
    finally:
        stack.stop()


def metrics_port(stack, name):
    return next(p.env["METRICS_PORT"] for p in stack.processes if p.name == name)


def scrape(stack, name) -> str:
    return requests.get(f"http://127.0.0.1:{metrics_port(stack, name)}/metrics", timeout=10).text


@pytest.mark.parametrize("service", SERVICES)
def test_promtool_accepts_every_services_metrics(stack, service):
    require_tool(PROMTOOL, "promtool (Debian's prometheus)")
    text = scrape(stack, service)
    assert "evreg_entrypoint_calls_total" in text
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def exported_names(stack) -> set:
    names = set()
    for service in SERVICES:
        for line in scrape(stack, service).splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                names.add(name)
                if kind == "histogram":
                    names |= {name + "_bucket", name + "_sum", name + "_count"}
                if kind == "counter" and not name.endswith("_total"):
                    names.add(name + "_total")
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_dashboard_query_names_an_exported_metric(stack):
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/event-registration.json").read_text())
    exported = exported_names(stack)
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            found = set(re.findall(r"\bevreg_[a-z_]+", target["expr"]))
            assert found, (panel["title"], target["expr"])
            queried |= found
    assert queried - exported == set()
    for needed in ("evreg_registrations_total", "evreg_seats_used", "evreg_waitlist_length",
                   "evreg_messages_sent_total", "evreg_messages_failed_total",
                   "evreg_entrypoint_duration_seconds_bucket", "evreg_outbox_backlog",
                   "evreg_dead_letters_total", "evreg_reminders_overdue"):
        assert needed in queried, needed


def test_one_correlation_id_runs_from_the_request_to_the_email(stack):
    answer = requests.get(stack.traced["links"]["self"], timeout=10,
                          headers={"X-Request-Id": "another"})
    assert answer.headers["X-Request-Id"] == "another"
    [email] = stack.smtp.mailbox.to("traced@example.org")
    assert email["X-Correlation-ID"] == stack.trace
    for service in SERVICES:
        lines = [json.loads(line) for line in stack.logs(service).splitlines() if line.startswith("{")]
        assert lines, service
        traced = [line for line in lines if line.get("correlation_id") == stack.trace]
        assert traced, f"{service} logged nothing with the request's correlation id"
    sent = [json.loads(line) for line in stack.logs("notification").splitlines()
            if line.startswith("{") and "sent" in line]
    assert any(line.get("correlation_id") == stack.trace and line.get("kind") == "seat_confirmed"
               for line in sent)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_reports_readiness(stack, service):
    response = requests.get(f"http://127.0.0.1:{metrics_port(stack, service)}/ready", timeout=10)
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["broker"] == "ok"
    if service != "gateway":
        assert checks["database"] == "ok"
