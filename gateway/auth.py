"""JWT verification to an immutable ``Principal``, and dev token minting.

Algorithms are pinned by key type: an HS256 secret accepts only HS256, a
public key only RS256/ES256, so ``alg: none`` and HS/RS key confusion fail.
Claims: ``org_id`` (uuid), ``sub``, ``roles``, ``exp`` (required); ``iss`` and
``aud`` when configured; ``nbf`` and ``iat`` when present (leeway at most
``MAX_LEEWAY_S``). A ``kid`` header must name a key this verifier was given
(``key_ids``); with none given, any ``kid`` is an unknown key (RFC 8725 3.10).

Must not: run SQL (whether the org exists is checked by the app, through
``gateway.data``), or know GraphQL types.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.config import Settings
from gateway.errors import Unauthenticated

ROLES = ("viewer", "analyst", "operator", "admin")
# What each role may do; a role includes those listed for it.
ROLE_GRANTS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "analyst": frozenset({"read", "analytics"}),
    "operator": frozenset({"read", "write"}),
    "admin": frozenset({"read", "analytics", "write", "admin"}),
}
MAX_SUBJECT_LEN = 200
# Clock skew tolerated on exp/nbf/iat; RFC 8725 advice is "a few minutes" at
# most, the catalog (J2) holds us to 60 s.
MAX_LEEWAY_S = 60
VERIFIED_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: uuid.UUID
    subject: str
    roles: frozenset[str]

    def can(self, permission: str) -> bool:
        return any(permission in ROLE_GRANTS.get(r, frozenset()) for r in self.roles)


class TokenVerifier:
    """Built once from settings; verifies bearer tokens. A verified token is
    remembered (bounded LRU, per verifier) until its ``exp`` plus leeway, so
    a client reusing its token skips the signature check (~30 µs each)."""

    def __init__(
        self,
        settings: Settings,
        cache_size: int = VERIFIED_CACHE_SIZE,
        *,
        key_ids: frozenset[str] | None = None,
    ) -> None:
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        if settings.jwt_public_key:
            self._key: Any = settings.jwt_public_key
            self._algorithms = ["RS256", "ES256"]
        elif settings.jwt_secret:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        else:  # Settings refuses this; kept for type narrowing
            raise ValueError("no JWT key configured")
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = max(0, min(settings.jwt_leeway_s, MAX_LEEWAY_S))
        # DBX_JWT_KEY_IDS names the `kid` of the configured key
        self._key_ids = settings.jwt_key_ids if key_ids is None else key_ids

    def verify(self, token: str) -> Principal:
        hit = self._verified.get(token)
        if hit is not None:
            if time.time() <= hit[1]:
                self._verified.move_to_end(token)
                return hit[0]
            del self._verified[token]
        principal, valid_until = self._decode(token)
        self._verified[token] = (principal, valid_until)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        options = {
            "require": ["exp", "sub", "org_id"],
            "verify_aud": self._audience is not None,
            "verify_nbf": True,
            "verify_iat": True,
        }
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if kid is not None and (not isinstance(kid, str) or kid not in self._key_ids):
                # one configured key: a token naming another key was not meant for it
                raise Unauthenticated("Invalid token: unknown key id")
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("Token not valid yet") from None
        except jwt.PyJWTError:
            raise Unauthenticated("Invalid token") from None
        # exp is required and was checked; cache no longer than the library would accept it
        return principal_from_claims(claims), float(claims["exp"]) + self._leeway


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        org_id = uuid.UUID(str(claims["org_id"]))
    except (KeyError, ValueError):
        raise Unauthenticated("Invalid token: org_id must be a UUID") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT_LEN:
        raise Unauthenticated("Invalid token: bad sub")
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("Invalid token: roles must be a list of strings")
    known = frozenset(r for r in roles if r in ROLES)
    if not known:
        raise Unauthenticated("Invalid token: no known role")
    return Principal(org_id=org_id, subject=sub, roles=known)


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthenticated("Missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


def mint_token(
    settings: Settings,
    *,
    org_id: uuid.UUID,
    role: str,
    subject: str,
    ttl_s: int = 12 * 3600,
    private_key: str | None = None,
) -> str:
    """A signed token for development (HS256 with the configured secret, or
    RS256 with ``private_key``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "org_id": str(org_id),
        "roles": [role],
        "iat": now,
        "exp": now + ttl_s,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if private_key is not None:
        return jwt.encode(claims, private_key, algorithm="RS256")
    if settings.jwt_secret is None:
        raise ValueError("minting needs DBX_JWT_SECRET (or a private key)")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
