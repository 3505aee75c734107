"""Attendee tokens: itsdangerous signatures, key rotation, the legacy format."""
import base64
import hashlib
import hmac
import re

import pytest
from itsdangerous import Signer

from shared import tokens
from shared.config import Settings
from shared.tokens import attendee_token, secret_keys, token_is_valid, unsubscribe_token

ID = "3f2b8c4e-1d2a-4b7e-9c1f-0a5d6e7f8a9b"
MAKERS = [attendee_token, unsubscribe_token]


def legacy(key: str, purpose: str, registration_id: str) -> str:
    """A token as emailed before tokens were itsdangerous signatures (the old module, verbatim)."""
    digest = hmac.new(key.encode(), f"{purpose}:{registration_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:24]).decode().rstrip("=")


@pytest.mark.parametrize("make", MAKERS)
def test_round_trip(make):
    token = make("s3cret", ID)
    assert token_is_valid("s3cret", ID, token, make)
    assert not token_is_valid("s3cret", ID + "x", token, make)
    assert not token_is_valid("other", ID, token, make)


@pytest.mark.parametrize("make", MAKERS)
def test_tokens_are_url_safe_and_deterministic(make):
    token = make("s3cret", ID)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert token == make("s3cret", ID)
    assert token != make("s3cret", ID[:-1] + "c")


def test_tokens_are_itsdangerous_signatures():
    signer = Signer(["s3cret"], salt=tokens.ATTENDEE_SALT, digest_method=hashlib.sha256)
    assert attendee_token("s3cret", ID) == signer.get_signature(ID).decode()


def test_the_default_make_is_the_attendee_token():
    assert token_is_valid("s3cret", ID, attendee_token("s3cret", ID))
    assert not token_is_valid("s3cret", ID, unsubscribe_token("s3cret", ID))


@pytest.mark.parametrize("make", MAKERS)
def test_rotation_the_first_key_signs_every_key_verifies(make):
    old_token = make("old", ID)
    # Rotated: the new key in front, the old one kept.
    assert token_is_valid("new,old", ID, old_token, make)
    assert make("new,old", ID) == make("new", ID) != old_token
    assert token_is_valid("new,old", ID, make("new,old", ID), make)
    assert token_is_valid("new", ID, make("new,old", ID), make)
    # The old key dropped: its tokens stop working.
    assert not token_is_valid("new", ID, old_token, make)
    # Any position verifies, not only the first two.
    assert token_is_valid("newest,new,old", ID, old_token, make)


def test_purposes_are_separated():
    for key in ("s3cret", "new,old"):
        assert not token_is_valid(key, ID, unsubscribe_token(key, ID), attendee_token)
        assert not token_is_valid(key, ID, attendee_token(key, ID), unsubscribe_token)
    assert attendee_token("s3cret", ID) != unsubscribe_token("s3cret", ID)


@pytest.mark.parametrize("make, purpose", [(attendee_token, "registration"),
                                           (unsubscribe_token, "unsubscribe")])
def test_legacy_tokens_are_accepted_under_every_key(make, purpose):
    assert token_is_valid("s3cret", ID, legacy("s3cret", purpose, ID), make)
    assert token_is_valid("new,old", ID, legacy("old", purpose, ID), make)
    assert token_is_valid("new,old", ID, legacy("new", purpose, ID), make)
    assert not token_is_valid("new", ID, legacy("old", purpose, ID), make)
    assert not token_is_valid("s3cret", ID + "x", legacy("s3cret", purpose, ID), make)
    # New tokens are never made in the legacy format.
    assert make("s3cret", ID) != legacy("s3cret", purpose, ID)


def test_legacy_purposes_are_separated():
    assert not token_is_valid("s3cret", ID, legacy("s3cret", "unsubscribe", ID), attendee_token)
    assert not token_is_valid("s3cret", ID, legacy("s3cret", "registration", ID),
                              unsubscribe_token)


@pytest.mark.parametrize("garbage", [
    None, "", " ", "é", "🙂" * 43, "\x00" * 43, "a" * 10_000, "é" * 10_000, "=" * 43,
    "not a token", "abc.def", "\ud800", "%41" * 20,
])
@pytest.mark.parametrize("make", MAKERS)
def test_garbage_is_just_false(garbage, make):
    assert token_is_valid("s3cret", ID, garbage, make) is False


@pytest.mark.parametrize("make", MAKERS)
def test_a_valid_token_altered_is_refused(make):
    token = make("s3cret", ID)
    for altered in (token + "=", token + "é", token[:-1], token + "A", " " + token,
                    token[:20] + "é" + token[20:], token.upper(), token + "\n"):
        assert token_is_valid("s3cret", ID, altered, make) is False, altered


@pytest.mark.parametrize("make", MAKERS)
def test_a_second_spelling_of_the_same_signature_is_refused(make):
    # The last of 43 characters carries 4 bits: base64 decoding ignores the
    # other 2, so 3 other letters decode to the same bytes.
    token = make("s3cret", ID)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    low_bits = alphabet.index(token[-1]) & 3
    assert low_bits == 0
    for other in range(1, 4):
        spelling = token[:-1] + alphabet[alphabet.index(token[-1]) + other]
        assert token_is_valid("s3cret", ID, spelling, make) is False


def test_garbage_registration_ids_are_just_false():
    token = attendee_token("s3cret", ID)
    for registration_id in ("", "\ud800", "é" * 10_000):
        assert token_is_valid("s3cret", registration_id, token) is False
    assert token_is_valid("s3cret", None, token) is False  # type: ignore[arg-type]


def test_whitespace_and_empty_entries_in_the_key_list():
    assert secret_keys(" new , old ,, ") == ["new", "old"]
    assert secret_keys("\tnew\n") == ["new"]
    token = attendee_token("old", ID)
    assert token_is_valid(" new , old ,", ID, token)
    assert attendee_token(" new ,old", ID) == attendee_token("new", ID)
    assert token_is_valid(", new", ID, attendee_token("new", ID))
    # Spaces inside a key are the key's own.
    assert attendee_token("a key", ID) != attendee_token("akey", ID)


@pytest.mark.parametrize("secret_key", ["", " ", ",", " , ,, "])
def test_a_secret_key_without_a_key_is_a_configuration_error(secret_key):
    with pytest.raises(ValueError, match="SECRET_KEY holds no key"):
        secret_keys(secret_key)
    with pytest.raises(ValueError, match="SECRET_KEY holds no key"):
        attendee_token(secret_key, ID)
    with pytest.raises(ValueError, match="SECRET_KEY holds no key"):
        token_is_valid(secret_key, ID, "whatever")


def test_an_unknown_make_is_the_programs_error():
    with pytest.raises(TypeError):
        token_is_valid("s3cret", ID, "x", make=lambda key, registration_id: "x")


def test_settings_refuse_a_secret_key_without_a_key(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", " , ")
    with pytest.raises(SystemExit, match="SECRET_KEY holds no key"):
        Settings.from_env().secret_key  # noqa: B018


def test_settings_keep_the_raw_key_list(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "new, old")
    assert Settings.from_env().secret_key == "new, old"


def test_a_generated_secret_key_is_one_key(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    secret_key = Settings.from_env().secret_key
    assert secret_keys(secret_key) == [secret_key]
    assert (tmp_path / "secret_key").read_text().strip() == secret_key
