"""Who may see the operational details (``/metrics``, the nodes of
``/readyz``): the ops token when ``DBX_OPS_TOKEN`` is set; with none set,
anyone in dev and nobody in prod."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import ops_access
from gateway.config import ConfigError, Settings

OPS = "ops-" + "t" * 40
SECRET = "s3cret-" + "x" * 40
DSN = "postgresql://dbx_gateway:pw@db.example:6432/dbx"


def settings(tmp_path: Path, **extra: str) -> Settings:
    env = {"DBX_STACK_DIR": str(tmp_path), "DBX_PRIMARY_DSN": DSN, "DBX_JWT_SECRET": SECRET}
    return Settings.from_env({**env, **extra})


@pytest.mark.parametrize("mode", ["dev", "prod"])
def test_with_an_ops_token_only_that_bearer_may(tmp_path: Path, mode: str) -> None:
    s = settings(tmp_path, DBX_ENV=mode, DBX_OPS_TOKEN=OPS)
    assert ops_access(s, f"Bearer {OPS}") is None
    assert ops_access(s, f"bearer  {OPS} ") is None
    for header in (None, "", "Bearer", f"Basic {OPS}", f"Bearer {OPS[:-1]}", f"Bearer {OPS}x"):
        denied = ops_access(s, header)
        assert denied is not None and denied.code == "UNAUTHENTICATED", header
    assert ops_access(s, "Bearer é-not-ascii") is not None


def test_without_an_ops_token_dev_is_open_and_prod_refuses(tmp_path: Path) -> None:
    assert ops_access(settings(tmp_path), None) is None
    denied = ops_access(settings(tmp_path, DBX_ENV="prod"), f"Bearer {OPS}")
    assert denied is not None and denied.code == "FORBIDDEN"
    assert "DBX_OPS_TOKEN" in denied.message


def test_short_ops_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DBX_OPS_TOKEN"):
        settings(tmp_path, DBX_OPS_TOKEN="short")
    assert OPS not in repr(settings(tmp_path, DBX_OPS_TOKEN=OPS))
