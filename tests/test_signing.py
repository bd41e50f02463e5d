"""URL signatures: HMAC-SHA256, rotation, expiry."""

from __future__ import annotations

import pytest

from chalicelib.errors import InvalidSignature, SignatureExpired, SignatureRequired
from chalicelib.resize.signing import sign, verify

OLD, NEW = b"old-secret-0123456789", b"new-secret-0123456789"


def test_round_trip() -> None:
    segment = sign(NEW, "300x200", "photos/café.jpg")
    assert len(segment) == 22
    verify(segment, "300x200", "photos/café.jpg", [NEW], now=0)


def test_any_current_key_verifies_during_rotation() -> None:
    verify(sign(OLD, "300x", "a.jpg"), "300x", "a.jpg", [NEW, OLD], now=0)
    with pytest.raises(InvalidSignature):
        verify(sign(OLD, "300x", "a.jpg"), "300x", "a.jpg", [NEW], now=0)


@pytest.mark.parametrize(
    ("size", "key"), [("301x", "a.jpg"), ("300x", "b.jpg"), ("300x", "a.jpg ")]
)
def test_signature_covers_size_and_key(size: str, key: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(sign(NEW, "300x", "a.jpg"), size, key, [NEW], now=0)


def test_expiry() -> None:
    segment = sign(NEW, "300x", "a.jpg", expires=1_000)
    assert segment.startswith("1000.")
    verify(segment, "300x", "a.jpg", [NEW], now=999)
    with pytest.raises(SignatureExpired):
        verify(segment, "300x", "a.jpg", [NEW], now=1_001)
    # The expiry is signed: moving it forward breaks the signature.
    forged = "9999." + segment.split(".", 1)[1]
    with pytest.raises(InvalidSignature):
        verify(forged, "300x", "a.jpg", [NEW], now=1_001)


@pytest.mark.parametrize("segment", ["300x200", "", "x" * 21, "0.abcdefghijklmnopqrstuv", "a" * 23])
def test_malformed_segment_means_no_signature(segment: str) -> None:
    with pytest.raises(SignatureRequired):
        verify(segment, "300x", "a.jpg", [NEW], now=0)


def test_sign_url_script_makes_urls_the_service_accepts() -> None:
    from scripts.ops.sign_url import signed_url

    url = signed_url("https://img.example.com/", NEW, "300x200", "a b/café.jpg", None)
    prefix = "https://img.example.com/"
    signature, size, *key = url.removeprefix(prefix).split("/")
    assert size == "300x200"
    assert "/".join(key) == "a%20b/caf%C3%A9.jpg"
    verify(signature, "300x200", "a b/café.jpg", [NEW], now=0)
