"""The offline GraphiQL page: it references only the pinned local files,
each with its integrity hash, and the asset route serves nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.api import graphiql


def _install(root: Path) -> None:
    for a in graphiql.ASSETS.values():
        (root / a.name).parent.mkdir(parents=True, exist_ok=True)
        (root / a.name).write_bytes(b"/* " + a.name.encode() + b" */")


def test_page_loads_only_pinned_local_files() -> None:
    urls = re.findall(r'(?:src|href)="([^"]+)"', graphiql.PAGE)
    assert sorted(urls) == sorted(a.url for a in graphiql.ASSETS.values())
    assert "//" not in "".join(urls)  # no scheme, no host: this gateway only
    for a in graphiql.ASSETS.values():
        assert f'"{a.url}" integrity="sha384-{a.sha384}"' in graphiql.PAGE
        assert re.fullmatch(r"(@[a-z-]+/)?[a-z-]+@\d+\.\d+\.\d+", a.package), a.package


def test_page_says_how_to_install_missing_files(tmp_path: Path) -> None:
    missing = graphiql.page(tmp_path)
    assert missing.status_code == 503 and b"make graphiql" in missing.body
    _install(tmp_path)
    assert graphiql.page(tmp_path).status_code == 200


def test_asset_route_serves_pinned_names_only(tmp_path: Path) -> None:
    _install(tmp_path)
    (tmp_path / "secret.txt").write_text("no")
    js = graphiql.asset(graphiql.GRAPHIQL_JS.name, tmp_path)
    assert js.status_code == 200 and js.media_type is not None
    assert js.media_type.startswith("text/javascript") and b"graphiql@3.8.3" in js.body
    assert "immutable" in js.headers["cache-control"]
    for name in ("secret.txt", "../config.py", "graphiql@3.8.3/package.json", ""):
        assert graphiql.asset(name, tmp_path).status_code == 404


def test_fetch_keeps_intact_files_and_replaces_others(tmp_path: Path, monkeypatch) -> None:
    def fake_pack(*args: object, **kwargs: object) -> None:
        raise AssertionError("npm pack ran although every file was intact")

    for a in graphiql.ASSETS.values():
        path = tmp_path / a.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    monkeypatch.setattr(graphiql, "_sha384", lambda data: "ok" if data == b"x" else "bad")
    monkeypatch.setattr(graphiql, "ASSETS", {k: _same(v) for k, v in graphiql.ASSETS.items()})
    monkeypatch.setattr(graphiql.subprocess, "run", fake_pack)
    assert graphiql.fetch(tmp_path) == []


def _same(a: graphiql.Asset) -> graphiql.Asset:
    return graphiql.Asset(a.package, a.file, "ok")
