"""The API against its OpenAPI document: the document validates, and
schemathesis finds no server error, no undocumented status code, no response
that breaks its schema, whether it guesses ids or is given real ones."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate

from tests.support.stack import Stack

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("contract"))
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_the_openapi_document_validates_and_covers_the_api(stack):
    document = requests.get(f"{stack.base_url}/openapi.json", timeout=10).json()
    validate(document)
    assert document["openapi"].startswith("3.")
    for path in ("/api/v1/events", "/api/v1/events/{slug}", "/api/v1/events/{slug}/registrations",
                 "/api/v1/events/{slug}/stats", "/api/v1/events/{slug}/announcements",
                 "/api/v1/registrations/{registration_id}",
                 "/api/v1/registrations/{registration_id}/confirm",
                 "/api/v1/registrations/{registration_id}/cancel",
                 "/api/v1/registrations/{registration_id}/calendar.ics", "/events/{slug}",
                 "/health", "/ready"):
        assert path in document["paths"], path


def schemathesis(stack, tmp_path: Path, parameters: dict, max_examples: int):
    config = tmp_path / "schemathesis.toml"
    lines = ["[parameters]"] + [f'"{key}" = "{value}"' for key, value in parameters.items()]
    config.write_text("\n".join(lines) + "\n")
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config),
               "run", f"{stack.base_url}/openapi.json", "--url", stack.base_url,
               "--checks", CHECKS, "--max-examples", str(max_examples), "--seed", "20261122",
               "-H", f"Authorization: Bearer {stack.admin_key}", "--no-color",
               "--request-timeout", "30"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_schemathesis_with_guessed_ids(stack, tmp_path):
    schemathesis(stack, tmp_path, {}, max_examples=15)


def test_schemathesis_with_a_real_event_and_registration(stack, tmp_path):
    event = stack.create_event(capacity=5, questions=[
        {"slug": "topic", "label": {"en": "Topic"}, "type": "text"}])
    answer = stack.register(event["slug"])
    stack.status(answer, wait=10)
    schemathesis(stack, tmp_path, {"slug": event["slug"], "registration_id": answer["id"],
                                   "token": answer["token"]}, max_examples=15)
