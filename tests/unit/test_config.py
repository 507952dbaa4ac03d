"""Settings are validated once: bad values raise ``ConfigError``, production
refuses the generated dev secret, and no secret ever appears in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings, dev_jwt_secret

GOOD_SECRET = "s3cret-" + "x" * 40
DSN = "postgresql://dbx_gateway:pa55word-in-dsn@db.example:6432/dbx"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {"DBX_STACK_DIR": str(tmp_path), "DBX_PRIMARY_DSN": DSN, "DBX_JWT_SECRET": GOOD_SECRET}
    base.update(extra)
    return base


def test_valid_environment_is_accepted(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, DBX_REPLICA_DSNS=f"{DSN}, {DSN}"))
    assert s.primary_dsn == DSN and len(s.replica_dsns) == 2 and not s.is_prod


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DBX_ENV", "staging"),
        ("DBX_MAX_REPLICA_LAG_S", "soon"),
        ("DBX_MAX_REPLICA_LAG_S", "-1"),
        ("DBX_POOL_MAX_SIZE", "0"),
        ("DBX_STATEMENT_CACHE", "sometimes"),
        ("DBX_ANALYTICS_PRIMARY_FALLBACK", "maybe"),
        ("DBX_MAX_DEPTH", "1000"),
        ("DBX_JWT_SECRET", "too-short"),
    ],
)
def test_bad_value_raises_config_error(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env(tmp_path, **{name: value}))


def test_analytics_replicas_must_name_configured_replicas(tmp_path: Path) -> None:
    two = {"DBX_REPLICA_DSNS": f"{DSN},{DSN}"}
    s = Settings.from_env(env(tmp_path, **two, DBX_ANALYTICS_REPLICAS=" replica_2 ,"))
    assert s.analytics_replicas == ("replica_2",)
    assert Settings.from_env(env(tmp_path, **two)).analytics_replicas == ()
    for bad in ("replica_3", "replica_0", "replica_1,primary", "2"):
        with pytest.raises(ConfigError, match="DBX_ANALYTICS_REPLICAS"):
            Settings.from_env(env(tmp_path, **two, DBX_ANALYTICS_REPLICAS=bad))


def test_pool_min_above_max_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="POOL_MIN"):
        Settings.from_env(env(tmp_path, DBX_POOL_MIN_SIZE="9", DBX_POOL_MAX_SIZE="4"))


def test_missing_primary_dsn_in_prod_is_refused(tmp_path: Path) -> None:
    e = env(tmp_path, DBX_ENV="prod")
    del e["DBX_PRIMARY_DSN"]
    with pytest.raises(ConfigError, match="DBX_PRIMARY_DSN"):
        Settings.from_env(e)


def test_prod_without_any_jwt_key_is_refused(tmp_path: Path) -> None:
    e = env(tmp_path, DBX_ENV="prod")
    del e["DBX_JWT_SECRET"]
    with pytest.raises(ConfigError):
        Settings.from_env(e)


def test_prod_refuses_the_generated_dev_secret(tmp_path: Path) -> None:
    dev_secret = dev_jwt_secret({"DBX_STACK_DIR": str(tmp_path)}, create=True)
    assert dev_secret is not None and len(dev_secret) >= 32
    # dev accepts it, prod does not
    Settings.from_env(env(tmp_path, DBX_JWT_SECRET=dev_secret))
    with pytest.raises(ConfigError, match="dev"):
        Settings.from_env(env(tmp_path, DBX_ENV="prod", DBX_JWT_SECRET=dev_secret))
    assert Settings.from_env(env(tmp_path, DBX_ENV="prod")).is_prod


def test_dev_generates_a_secret_when_none_is_set(tmp_path: Path) -> None:
    e = env(tmp_path)
    del e["DBX_JWT_SECRET"]
    s = Settings.from_env(e)
    assert s.jwt_secret == (tmp_path / "jwt_secret").read_text().strip()


def test_unreadable_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DBX_JWT_PUBLIC_KEY_FILE"):
        Settings.from_env(env(tmp_path, DBX_JWT_PUBLIC_KEY_FILE=str(tmp_path / "missing.pem")))


def test_repr_and_str_hide_secrets_and_passwords(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, DBX_OWNER_DSN="postgresql://o:owner-pw@h/dbx"))
    for text in (repr(s), str(s), f"{s!r}", f"{s}"):
        assert GOOD_SECRET not in text
        assert "pa55word-in-dsn" not in text
        assert "owner-pw" not in text


def test_jwt_key_ids_are_read_and_a_known_kid_is_accepted() -> None:
    import time
    import uuid

    import jwt

    from gateway.auth import TokenVerifier
    from gateway.errors import Unauthenticated

    secret = "k" * 40
    env = {"DBX_PRIMARY_DSN": "postgresql://x@127.0.0.1/dbx", "DBX_JWT_SECRET": secret}
    claims = {"sub": "s", "org_id": str(uuid.uuid4()), "roles": ["viewer"]}
    claims["exp"] = int(time.time()) + 60
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "key-2026"})
    with pytest.raises(Unauthenticated):
        TokenVerifier(Settings.from_env(env)).verify(token)
    trusted = Settings.from_env({**env, "DBX_JWT_KEY_IDS": "key-2025, key-2026"})
    assert trusted.jwt_key_ids == frozenset({"key-2025", "key-2026"})
    assert TokenVerifier(trusted).verify(token).subject == "s"
