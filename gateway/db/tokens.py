"""Consistency tokens: the signed WAL position a write hands its client
(``X-DBX-Consistency``), so that the client's later reads see that write.

A token is ``1.<lsn>.<mac>``: the version, the LSN in lower-case hex, and the
first 16 hex digits of an HMAC-SHA256 of the LSN text, under a key derived
from the deployment's JWT key material. Only a token this deployment signed
is honoured: a forged or foreign one must not force reads onto the primary.

Must not: do I/O or know how a token travels (the HTTP layer carries it).
"""

from __future__ import annotations

import hashlib
import hmac
import re

# a token's LSN: lower-case hex as ``TokenSigner.make`` writes it, within bigint
TOKEN_LSN = re.compile(r"[0-9a-f]{1,16}")
MAX_LSN = (1 << 63) - 1

__all__ = ["MAX_LSN", "TokenSigner"]


class TokenSigner:
    """Makes and checks the tokens of one deployment."""

    __slots__ = ("_key",)

    def __init__(self, key_material: str) -> None:
        self._key = hashlib.sha256(b"dbx-consistency\0" + key_material.encode()).digest()

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:16]

    def make(self, lsn: int) -> str:
        body = f"{lsn:x}"
        return f"1.{body}.{self._mac(body)}"

    def parse(self, token: str | None) -> int | None:
        """The LSN in a token this deployment issued; None for anything else."""
        if not token:
            return None
        parts = token.strip().split(".")
        if len(parts) != 3 or parts[0] != "1" or not TOKEN_LSN.fullmatch(parts[1]):
            return None
        if not hmac.compare_digest(self._mac(parts[1]), parts[2]):
            return None
        lsn = int(parts[1], 16)
        return lsn if lsn <= MAX_LSN else None  # a bigint, as PostgreSQL compares it
