"""The gateway's HTTP helpers with real werkzeug requests."""
import hashlib
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway.http_api import (
    MAX_BODY,
    Problem,
    next_link,
    presented_key,
    read_json,
    require_bearer,
    require_token,
)
from services.gateway.params import IDEMPOTENCY_KEY, STATUS, WAIT
from shared.tokens import attendee_token


def make_request(data=b"", content_type="application/json", headers=None, query=None):
    builder = EnvironBuilder(method="POST", data=data, content_type=content_type,
                             headers=headers or {}, query_string=query)
    return Request(builder.get_environ())


def status_of(call):
    with pytest.raises(Problem) as problem:
        call()
    return problem.value.status


def test_bodies_are_read_within_limits():
    assert read_json(make_request(b'{"a": 1}')) == {"a": 1}
    assert status_of(lambda: read_json(make_request(b'{"a": 1}', "text/plain"))) == 415
    assert status_of(lambda: read_json(make_request(b"{" + b" " * MAX_BODY + b"}"))) == 413
    assert status_of(lambda: read_json(make_request(b'{"a": '))) == 400
    assert status_of(lambda: read_json(make_request(b"[1, 2]"))) == 400
    assert status_of(lambda: read_json(make_request(b"[" * 50000))) == 400    # no RecursionError
    assert status_of(lambda: read_json(make_request(b"\xff\xfe"))) == 400


def test_problems_are_rfc9457_documents():
    response = Problem(422, "Validation failed", "bad", [{"field": "email", "message": "x"}]).response()
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data())
    assert body == {"type": "about:blank", "title": "Validation failed", "status": 422,
                    "detail": "bad", "errors": [{"field": "email", "message": "x"}]}


def test_organiser_calls_need_a_bearer_key():
    assert require_bearer(make_request(headers={"Authorization": "Bearer k3y"})) == "k3y"
    for headers in ({}, {"Authorization": "Basic k3y"}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer kéy"}):
        assert status_of(lambda h=headers: require_bearer(make_request(headers=h))) == 401


def test_the_installation_key_is_told_apart_and_only_a_keys_fingerprint_goes_on():
    def presented(key):
        return presented_key(make_request(headers={"Authorization": f"Bearer {key}"}), "k3y", "s3cret")
    secret = "x" * 43
    assert presented("k3y") is None
    assert presented(f"evk_{'0' * 32}_{secret}") == ("0" * 32, hashlib.sha256(secret.encode()).hexdigest())
    assert status_of(lambda: presented("evk_other")) == 401


def test_the_next_page_is_named_relative_with_the_same_query():
    request = make_request(query={"limit": "2", "status": "confirmed", "after": "a"})
    link = next_link(request, "b" * 32)["Link"]
    assert link.startswith("</") and link.endswith('>; rel="next"')
    assert "limit=2" in link and "status=confirmed" in link and f"after={'b' * 32}" in link
    assert "after=a&" not in link and next_link(request, None) == {}


def test_attendee_tokens_are_checked():
    token = attendee_token("s", "r1")
    require_token(make_request(query={"token": token}), "s", "r1")
    assert status_of(lambda: require_token(make_request(query={"token": token}), "s", "r2")) == 404
    assert status_of(lambda: require_token(make_request(), "s", "r1")) == 404
    assert status_of(lambda: require_token(make_request(query={"token": "ÆU"}), "s", "ÆU")) == 404


def test_query_parameters_and_headers_are_read_within_their_bounds():
    assert WAIT.read(make_request(query={"wait": "5"})) == 5
    assert WAIT.read(make_request()) == 0
    assert status_of(lambda: WAIT.read(make_request(query={"wait": "99"}))) == 400
    assert status_of(lambda: WAIT.read(make_request(query={"wait": "x"}))) == 400
    assert STATUS.read(make_request(query={"status": "held"})) == "held"
    assert STATUS.read(make_request()) is None
    assert status_of(lambda: STATUS.read(make_request(query={"status": "lost"}))) == 400
    assert IDEMPOTENCY_KEY.read(make_request(headers={"Idempotency-Key": "k 1"})) == "k 1"
    assert status_of(lambda: IDEMPOTENCY_KEY.read(make_request(headers={"Idempotency-Key": "a\x7f"}))) == 400


def test_the_rate_limiter_refills_evenly():
    from services.gateway.limits import RateLimiter
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])      # one every 10 s, bursts of 6
    assert [limiter.check("a") for _ in range(6)] == [0.0] * 6
    assert 9.9 < limiter.check("a") <= 10.0
    assert limiter.check("b") == 0.0                      # per client
    now[0] += 10
    assert limiter.check("a") == 0.0
    assert RateLimiter(0).check("a") == 0.0               # 0 turns it off


def test_csv_cells_cannot_run_as_formulas():
    from services.gateway.exports import cell, registrations_csv
    assert cell("=HYPERLINK(\"http://evil\")") == "'=HYPERLINK(\"http://evil\")"
    assert cell("+1") == "'+1" and cell("Amira") == "Amira" and cell(None) == ""
    text = "".join(registrations_csv([[{"id": "r1", "name": "@x", "sessions": ["a", "b"],
                                        "answers": {"topic": "-1"}}]], ["topic"], str))
    assert text.splitlines()[1].startswith("r1,,'@x") and text.rstrip().endswith("'-1")


def test_behind_a_proxy_the_client_is_the_address_the_proxy_saw():
    from services.gateway.limits import client_address
    # The client wrote the first entry itself; the proxy appended the last one.
    request = make_request(headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.7"})
    assert client_address(request, trust_forwarded=True) == "203.0.113.7"
    assert client_address(request, trust_forwarded=False) != "1.2.3.4"
