"""Decoding what the application decodes (issue 21, item 1): base64 (standard, URL-safe, unpadded)
and hex readings of a value are scored beside it, nested ones too; random tokens and hashes are
not read as text; the decoding that fired is a request note and a reason."""
from __future__ import annotations

import base64

import pytest

from extproc.attack.decode import decoded_forms
from extproc.config.compile import parse_policy
from extproc.core.transaction import Transaction
from extproc.core.request import Request

# Payloads the model stops when sent plain: encoded, they must be stopped as well.
PAYLOADS = ("<script>alert(document.cookie)</script>", "' UNION SELECT password FROM users--",
            "../../../../etc/passwd", "; cat /etc/passwd")
ENCODINGS = {
    "base64": lambda raw: base64.b64encode(raw).decode(),
    "base64url-unpadded": lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
    "hex": lambda raw: raw.hex(),
    "base64-of-base64": lambda raw: base64.b64encode(base64.b64encode(raw)).decode(),
}


@pytest.fixture(scope="module")
def policy():
    return parse_policy("version: 1\ndefaults: {layers: {attack: {}}}\n")


def decide(policy, method, path, headers=(), body=b""):
    request = Request(method, path, headers=tuple(headers), has_body=bool(body))
    transaction = Transaction(policy, request)
    decision = transaction.on_headers()
    return (decision or transaction.on_body(body)), request


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_encoded_payload_is_caught_wherever_it_is_sent(policy, payload, encoding):
    encoded = ENCODINGS[encoding](payload.encode())
    places = {
        "query": ("GET", f"/search?q={encoded}", (), b""),
        "path": ("GET", f"/files/{base64.urlsafe_b64encode(payload.encode()).decode().rstrip('=')}", (), b"")
        if encoding.startswith("base64") else ("GET", f"/files/{encoded}", (), b""),
        "form": ("POST", "/submit", (("content-type", "application/x-www-form-urlencoded"),),
                 f"note={encoded.replace('+', '%2B')}".encode()),
        "multipart": ("POST", "/upload", (("content-type", "multipart/form-data; boundary=b"),),
                      f'--b\r\nContent-Disposition: form-data; name="doc"\r\n\r\n{encoded}\r\n--b--\r\n'.encode()),
    }
    for place, (method, path, headers, body) in places.items():
        decision, request = decide(policy, method, path, headers, body)
        assert not decision.allowed, (place, encoded)
        assert any(r.startswith("attack:decoded=") for r in decision.reasons), decision.reasons
        assert any(note.startswith("decoded:") for note in request.notes)


def test_the_same_text_encoded_harmlessly_passes(policy):
    for encoding in ENCODINGS.values():
        decision, _ = decide(policy, "GET", f"/search?q={encoding(b'hello there, a plain sentence')}")
        assert decision.allowed


@pytest.mark.parametrize("value", [
    "d41d8cd98f00b204e9800998ecf8427e",  # an MD5
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  # a JWT: dots are no base64
    base64.b64encode(bytes(range(256))).decode(),  # binary
    "internationalization", "Supercalifragilistic", "550e8400e29b41d4a716446655440000",
])
def test_tokens_hashes_and_words_have_no_reading(value):
    assert decoded_forms(value) == []


def test_readings_are_named_and_nested():
    twice = base64.b64encode(base64.b64encode(b"../../etc/passwd")).decode()
    assert decoded_forms(twice) == [("base64", "Li4vLi4vZXRjL3Bhc3N3ZA=="), ("base64+base64", "../../etc/passwd")]
    assert decoded_forms("0x3c7363726970743e") == [("hex", "<script>")]


def test_decoded_values_count_against_the_request_limits(policy):
    """Junk base64 first cannot push the real payload out unseen: the values limit says so."""
    tight = parse_policy("version: 1\ndefaults: {layers: {attack: {max_values: 8}}}\n")
    junk = "&".join(f"j{i}={base64.b64encode(f'plain text number {i}'.encode()).decode()}" for i in range(20))
    decision, request = decide(tight, "GET", f"/search?{junk}&q={ENCODINGS['base64'](PAYLOADS[0].encode())}")
    assert not decision.allowed and "attack_values_truncated" in request.notes
