"""Rate limits on public POSTs and CORS, on a gateway configured for them."""
import pytest
import requests

from tests.support.stack import Stack

ORIGIN = "https://conference.example.org"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("limits"),
                  extra_env={"RATE_LIMIT_PER_MINUTE": "3", "CORS_ALLOWED_ORIGINS": ORIGIN})
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_public_posts_are_limited_per_client_with_retry_after(stack):
    event = stack.create_event()
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/registrations"
    codes = [requests.post(url, json={"name": "R", "email": f"limit-{i}@example.org"}, timeout=10)
             for i in range(5)]
    assert [r.status_code for r in codes] == [202, 202, 202, 429, 429]
    assert int(codes[3].headers["Retry-After"]) >= 1
    assert codes[3].headers["Content-Type"].startswith("application/problem+json")
    # Organiser calls and reads are not limited.
    for _ in range(5):
        assert requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}", timeout=10).ok


def test_cors_allows_the_configured_origin_only(stack):
    url = f"{stack.base_url}/api/v1/events/anything/registrations"
    preflight = requests.options(url, headers={"Origin": ORIGIN,
                                               "Access-Control-Request-Method": "POST"}, timeout=10)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    other = requests.options(url, headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers
    read = requests.get(f"{stack.base_url}/api/v1/events/anything", headers={"Origin": ORIGIN}, timeout=10)
    assert read.status_code == 404 and read.headers["Access-Control-Allow-Origin"] == ORIGIN
