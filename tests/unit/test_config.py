"""Settings are validated once: bad values raise ``ConfigError``, production
refuses the generated dev secret, and no secret ever appears in a repr."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from gateway.config import REPO_ROOT, ConfigError, Settings, dev_jwt_secret

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


def _stack_script() -> ModuleType:
    """deploy/local/stack (a script without .py) as a module."""
    loader = importlib.machinery.SourceFileLoader(
        "dbx_stack", str(REPO_ROOT / "deploy/local/stack")
    )
    spec = importlib.util.spec_from_loader("dbx_stack", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _fake_stack(tmp_path: Path, replicas: int) -> None:
    for name in ["primary"] + [f"replica_{i}" for i in range(1, replicas + 1)]:
        (tmp_path / "pg" / name).mkdir(parents=True)
        (tmp_path / "pg" / name / "PG_VERSION").write_text("15\n")


def test_dev_dsns_come_from_the_file_the_stack_writes(tmp_path: Path, monkeypatch) -> None:
    stack = _stack_script()
    _fake_stack(tmp_path, replicas=2)
    monkeypatch.setattr(stack, "PG_DIR", tmp_path / "pg")
    pw = {role: f"pw-{role}" for role in stack.ROLES}
    stack.write_settings(pw, tmp_path / "stack.json")
    assert (tmp_path / "stack.json").stat().st_mode & 0o777 == 0o600
    s = Settings.from_env({"DBX_STACK_DIR": str(tmp_path), "DBX_JWT_SECRET": GOOD_SECRET})
    gateway = "postgresql://dbx_gateway:pw-dbx_gateway@127.0.0.1:6432"
    assert s.primary_dsn == f"{gateway}/dbx"
    assert s.replica_dsns == (f"{gateway}/dbx_replica_1", f"{gateway}/dbx_replica_2")
    assert s.owner_dsn == "postgresql://dbx_owner:pw-dbx_owner@127.0.0.1:55432/dbx"
    # explicit settings win; prod never takes the stack's gateway DSNs
    s = Settings.from_env(env(tmp_path, DBX_REPLICA_DSNS=""))
    assert s.primary_dsn == DSN and s.replica_dsns == ()
    prod = {"DBX_STACK_DIR": str(tmp_path), "DBX_JWT_SECRET": GOOD_SECRET, "DBX_ENV": "prod"}
    with pytest.raises(ConfigError, match="DBX_PRIMARY_DSN"):
        Settings.from_env(prod)


def test_no_stack_file_means_no_dsns_whatever_the_directories(tmp_path: Path) -> None:
    _fake_stack(tmp_path, replicas=2)
    (tmp_path / "secrets.json").write_text('{"dbx_gateway": "pw", "dbx_owner": "pw"}')
    with pytest.raises(ConfigError, match="DBX_PRIMARY_DSN"):
        Settings.from_env({"DBX_STACK_DIR": str(tmp_path), "DBX_JWT_SECRET": GOOD_SECRET})
    s = Settings.from_env(env(tmp_path))
    assert s.replica_dsns == () and s.owner_dsn == ""
    (tmp_path / "stack.json").write_text("{not json")
    assert Settings.from_env(env(tmp_path)).replica_dsns == ()
