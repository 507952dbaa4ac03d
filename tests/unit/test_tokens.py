"""Consistency tokens (``gateway.db.tokens``): what a deployment signs it
reads back; anything else (forged, malformed, foreign, beyond bigint) is
no token at all."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.db.tokens import MAX_LSN, TokenSigner

SIGNER = TokenSigner("deployment-secret")


@pytest.mark.parametrize("lsn", [0, 1, 0x16B3A28, 0xFFFF_FFFF, MAX_LSN])
def test_a_token_gives_back_its_lsn(lsn: int) -> None:
    token = SIGNER.make(lsn)
    assert SIGNER.parse(token) == lsn
    assert SIGNER.parse(f"  {token}\n") == lsn  # header whitespace


def test_the_format_and_key_stay_those_of_tokens_already_issued() -> None:
    """``1.<lsn hex>.<16 hex of HMAC-SHA256>``, keyed by the JWT material:
    clients hold tokens across a gateway's restart or upgrade."""
    key = hashlib.sha256(b"dbx-consistency\0deployment-secret").digest()
    mac = hmac.new(key, b"2a", hashlib.sha256).hexdigest()[:16]
    assert SIGNER.make(42) == f"1.2a.{mac}"
    assert SIGNER.parse(f"1.2a.{mac}") == 42


def _flip(ch: str) -> str:
    return "0" if ch != "0" else "1"


def test_a_forged_mac_is_no_token() -> None:
    version, body, mac = SIGNER.make(0x5000).split(".")
    for i in range(len(mac)):
        forged = mac[:i] + _flip(mac[i]) + mac[i + 1 :]
        assert SIGNER.parse(f"{version}.{body}.{forged}") is None
    # a later LSN under the MAC of an earlier one (forcing reads elsewhere)
    assert SIGNER.parse(f"1.{0x6000:x}.{mac}") is None
    assert SIGNER.parse(f"1.{body}.{mac[:-1]}") is None  # a MAC cut short


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "   ",
        "1",
        "1.2a",
        "1..",
        "garbage",
        "1.2a.x.y",
        "1.-2a.0000000000000000",
        "1.0x2a.0000000000000000",
    ],
)
def test_malformed_tokens_are_no_token(token: str | None) -> None:
    assert SIGNER.parse(token) is None


def test_a_well_signed_token_of_another_shape_is_no_token() -> None:
    """The MAC alone is not enough: version 1, lower-case hex, 1-16 digits."""
    good = SIGNER.make(0xABC)
    _, body, mac = good.split(".")
    assert SIGNER.parse(f"2.{body}.{mac}") is None
    upper = body.upper()
    upper_mac = hmac.new(
        hashlib.sha256(b"dbx-consistency\0deployment-secret").digest(),
        upper.encode(),
        hashlib.sha256,
    ).hexdigest()[:16]
    assert SIGNER.parse(f"1.{upper}.{upper_mac}") is None


def test_an_lsn_beyond_bigint_is_no_token() -> None:
    """PostgreSQL compares LSNs as bigint: a larger one, even signed by this
    deployment, is refused rather than compared wrongly."""
    assert SIGNER.parse(SIGNER.make(MAX_LSN + 1)) is None
    assert SIGNER.parse(SIGNER.make((1 << 64) - 1)) is None  # 16 hex digits, the most
    assert SIGNER.parse(SIGNER.make(1 << 64)) is None  # 17 digits


def test_another_deployments_token_is_no_token() -> None:
    token = TokenSigner("another-secret").make(0x5000)
    assert SIGNER.parse(token) is None
    assert TokenSigner("another-secret").parse(token) == 0x5000
    assert TokenSigner("").parse(SIGNER.make(1)) is None  # no key material configured
