"""Submission the way mail providers take it, against a real aiosmtpd that
requires what they require: STARTTLS (or TLS from the first byte) with a
certificate of a throwaway CA that the sender must verify, then a login.
What fails (a wrong password, no STARTTLS offered, a certificate nobody
vouches for) is said in one line naming the server and the cause, and the
messages wait, unchanged, never sent in clear. DKIM signatures verify."""
import email
import logging

import dkim
import pytest

from shared.config import Settings
from tests.notification.test_sending import log, queue, worker_for
from tests.support.mail import SmtpServer
from tests.support.tls import dkim_key, throwaway_authority

LOGIN = ("organiser@example.org", "correct horse battery staple")


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return throwaway_authority(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def submission(authority, monkeypatch):
    """Starts a submission server; the sender trusts the throwaway CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.ca_file))
    servers = []

    def start(security="starttls", tls=authority, login=LOGIN, handler=None):
        servers.append(SmtpServer(tls=tls, security=security, login=login, handler=handler).start())
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def submitting(db, monkeypatch, server, security="starttls", password=LOGIN[1]):
    monkeypatch.setenv("SMTP_SECURITY", security)
    monkeypatch.setenv("SMTP_USERNAME", LOGIN[0])
    monkeypatch.setenv("SMTP_PASSWORD", password)
    return worker_for(db, monkeypatch, server.port, connections=1)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_messages_go_over_verified_tls_after_a_login(db, submission, monkeypatch, security):
    server = submission(security)
    worker = submitting(db, monkeypatch, server, security)
    queue(db, 1)
    queue(db, 2)
    worker.tick()
    assert {cause: row.status for cause, row in log(db).items()} == {
        "status:r1:1": "sent", "status:r2:1": "sent"}
    assert len(server.mailbox.messages) == 2
    assert server.logins == [(LOGIN[0], True)]          # one login: the connection is kept
    assert worker.problem is None


def test_a_wrong_password_is_said_once_and_the_messages_wait_unchanged(db, submission, monkeypatch,
                                                                        caplog):
    server = submission()
    worker = submitting(db, monkeypatch, server, password="wrong")
    queue(db, 1)
    worker.tick()
    [row] = log(db).values()
    assert (row.status, row.attempts) == ("queued", 0)
    where = f"smtp://127.0.0.1:{server.port} (starttls)"
    assert worker.problem == row.last_error
    assert worker.problem.startswith(f"{where} refused the login of {LOGIN[0]}: 535 ")
    assert worker.problem.endswith("check SMTP_USERNAME and SMTP_PASSWORD")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"cannot send email: {worker.problem}; messages wait in the delivery log "
                      "and the server is tried again, at least every 60 s"]
    assert "wrong" not in " ".join(caplog.messages)      # the password is never logged
    # smtplib tries each mechanism offered (PLAIN, then LOGIN); none passes
    assert set(server.logins) == {(LOGIN[0], False)} and server.mailbox.messages == []


def test_a_server_that_does_not_offer_starttls_gets_nothing_in_clear(db, submission, monkeypatch):
    server = submission(tls=None, login=None)           # plain SMTP, no STARTTLS
    worker = submitting(db, monkeypatch, server)
    queue(db, 1)
    worker.tick()
    assert worker.problem == (f"smtp://127.0.0.1:{server.port} (starttls) does not offer STARTTLS; "
                              "nothing is sent in clear (SMTP_SECURITY)")
    assert server.mailbox.messages == [] and server.logins == []
    assert log(db)["status:r1:1"].status == "queued"


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_no_trusted_authority_signed_is_refused_before_the_login(
        db, submission, monkeypatch, tmp_path, security):
    stranger = throwaway_authority(tmp_path / "stranger", name="Someone else's CA")
    server = submission(security, tls=stranger)
    worker = submitting(db, monkeypatch, server, security)
    queue(db, 1)
    worker.tick()
    assert worker.problem.startswith(f"smtp://127.0.0.1:{server.port} ({security}): its certificate "
                                     "is not trusted: unable to get local issuer certificate")
    assert server.logins == [] and server.mailbox.messages == []


def test_a_login_never_travels_in_clear(monkeypatch):
    monkeypatch.setenv("SMTP_USERNAME", "someone")
    monkeypatch.setenv("SMTP_SECURITY", "none")
    with pytest.raises(SystemExit, match="must not travel in clear"):
        Settings.from_env("notification")
    monkeypatch.delenv("SMTP_SECURITY")
    assert Settings.from_env("notification").smtp_security == "starttls"


def test_dkim_signatures_verify_and_cover_the_unsubscribe_headers(db, monkeypatch, tmp_path):
    key, record = dkim_key(tmp_path)
    monkeypatch.setenv("DKIM_DOMAIN", "example.org")
    monkeypatch.setenv("DKIM_SELECTOR", "events2026")
    monkeypatch.setenv("DKIM_PRIVATE_KEY_FILE", str(key))
    server = SmtpServer().start()
    try:
        worker = worker_for(db, monkeypatch, server.port, connections=1)
        queue(db, 1, content={"subject": "Nouvelles de la conférence", "text": "t", "html": "<p>h</p>",
                              "recipient_name": "Zoë", "list_label": "conf", "list_name": "Conférence",
                              "unsubscribe_url": "https://events.example.org/unsubscribe/r1?token=T"})
        worker.tick()
    finally:
        server.stop()
    [raw] = server.mailbox.raw

    def dns(name, timeout=5):
        return record.encode() if name == b"events2026._domainkey.example.org." else None
    assert dkim.verify(raw, dnsfunc=dns)
    header = email.message_from_bytes(raw)["DKIM-Signature"]
    tags = dkim.util.parse_tag_value("".join(header.split()).encode())
    signed = set(tags[b"h"].lower().split(b":"))
    assert {b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post", b"list-id"} <= signed
    assert not dkim.verify(raw.replace(b"token=T", b"token=X"), dnsfunc=dns)


def test_a_dkim_key_that_cannot_sign_stops_the_start(db, monkeypatch, tmp_path):
    (tmp_path / "bad.key").write_text("not a key")
    monkeypatch.setenv("DKIM_DOMAIN", "example.org")
    monkeypatch.setenv("DKIM_SELECTOR", "s")
    monkeypatch.setenv("DKIM_PRIVATE_KEY_FILE", str(tmp_path / "bad.key"))
    with pytest.raises(SystemExit, match="DKIM_PRIVATE_KEY_FILE=.*bad.key: cannot sign with it"):
        worker_for(db, monkeypatch, 1)
    monkeypatch.delenv("DKIM_SELECTOR")
    with pytest.raises(SystemExit, match="DKIM_SELECTOR not set"):
        Settings.from_env("notification")


