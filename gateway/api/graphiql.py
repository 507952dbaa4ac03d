"""GraphiQL served offline: the IDE page (dev only) and its pinned assets.

The page loads React, GraphiQL and the explorer plugin from this gateway
(``/graphiql/assets/<package>@<version>/<file>``), never from a CDN, so it
works in a network without the internet. The files come from the npm
registry at set-up (``make graphiql``: ``python -m gateway.api.graphiql``),
each checked against its pinned SHA-384 (the page's ``integrity`` too), into
the git-ignored ``gateway/static/graphiql/``.

Must not: reach the network while serving, or serve any file but the pinned
assets; whether the IDE is on (dev) is the caller's to decide.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import HTMLResponse, Response

ASSET_DIR = Path(__file__).resolve().parent.parent / "static" / "graphiql"
ASSET_PREFIX = "/graphiql/assets/"


@dataclass(frozen=True)
class Asset:
    package: str  # npm spec, version pinned: "react@18.2.0"
    file: str  # path inside the package
    sha384: str  # base64, as in a Subresource Integrity attribute

    @property
    def name(self) -> str:
        return f"{self.package}/{self.file}"

    @property
    def url(self) -> str:
        return ASSET_PREFIX + self.name

    @property
    def integrity(self) -> str:
        return f"sha384-{self.sha384}"


# The versions strawberry-graphql 0.341's own GraphiQL page loads from unpkg.
REACT = Asset(
    "react@18.2.0",
    "umd/react.production.min.js",
    "tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
)
REACT_DOM = Asset(
    "react-dom@18.2.0",
    "umd/react-dom.production.min.js",
    "bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
)
GRAPHIQL_CSS = Asset(
    "graphiql@3.8.3",
    "graphiql.min.css",
    "Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
)
GRAPHIQL_JS = Asset(
    "graphiql@3.8.3",
    "graphiql.min.js",
    "HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
)
EXPLORER_CSS = Asset(
    "@graphiql/plugin-explorer@1.0.2",
    "dist/style.css",
    "5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
)
EXPLORER_JS = Asset(
    "@graphiql/plugin-explorer@1.0.2",
    "dist/index.umd.js",
    "2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
)
ASSETS = {
    a.name: a for a in (REACT, REACT_DOM, GRAPHIQL_CSS, GRAPHIQL_JS, EXPLORER_CSS, EXPLORER_JS)
}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _sha384(data: bytes) -> str:
    return base64.b64encode(hashlib.sha384(data).digest()).decode()


def _script(a: Asset) -> str:
    return f'<script src="{a.url}" integrity="{a.integrity}"></script>'


def _style(a: Asset) -> str:
    return f'<link rel="stylesheet" href="{a.url}" integrity="{a.integrity}">'


# The query, variables and headers editors start from the URL's q, variables
# and headers parameters and write back to them, as strawberry's page does.
PAGE = f"""<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>DBX Gateway GraphiQL</title>
<style>body {{ margin: 0; overflow: hidden; }} #graphiql {{ height: 100vh; display: flex; }}</style>
{_style(GRAPHIQL_CSS)}
{_style(EXPLORER_CSS)}
{_script(REACT)}
{_script(REACT_DOM)}
</head>
<body>
<div id="graphiql" class="graphiql-container">Loading...</div>
{_script(GRAPHIQL_JS)}
{_script(EXPLORER_JS)}
<script>
const params = Object.fromEntries(new URLSearchParams(window.location.search));
function remember(key, value) {{
  params[key] = value;
  const kept = Object.entries(params).filter(([, v]) => Boolean(v));
  history.replaceState(null, "", "?" + new URLSearchParams(kept).toString());
}}
const fetcher = GraphiQL.createFetcher({{ url: window.location.href.split("?")[0] }});
function Ide() {{
  return React.createElement(GraphiQL, {{
    fetcher,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    defaultEditorToolsVisibility: true,
    query: params.q,
    defaultQuery: "# Headers: {{\\"Authorization\\": \\"Bearer <token>\\"}}\\n"
      + "{{\\n  viewer {{ subject roles }}\\n}}\\n",
    variables: params.variables,
    headers: params.headers,
    onEditQuery: (v) => remember("q", v),
    onEditVariables: (v) => remember("variables", v),
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    inputValueDeprecation: true,
  }});
}}
ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(Ide));
</script>
</body>
</html>
"""

MISSING = """<!doctype html>
<html><head><meta charset="utf-8"><title>DBX Gateway GraphiQL</title></head>
<body><p>GraphiQL's files are not installed here: run <code>make graphiql</code>
(or <code>make setup</code>), then reload.</p></body></html>
"""


def installed(root: Path = ASSET_DIR) -> bool:
    return all((root / a.name).is_file() for a in ASSETS.values())


def page(root: Path = ASSET_DIR) -> Response:
    """The IDE page, or a 503 that says how to install its files."""
    if not installed(root):
        return HTMLResponse(MISSING, status_code=503)
    return HTMLResponse(PAGE)


_cache: dict[Path, bytes] = {}


def asset(name: str, root: Path = ASSET_DIR) -> Response:
    """One pinned file, cached for a year (its path names its version);
    404 for any other name or a file not installed."""
    a = ASSETS.get(name)
    if a is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    path = root / a.name
    data = _cache.get(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError:
            return Response(MISSING, status_code=404, media_type="text/html")
        _cache[path] = data
    media = MEDIA_TYPES[Path(a.file).suffix]
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(data, media_type=media, headers=headers)


def fetch(root: Path = ASSET_DIR) -> list[str]:
    """Install the pinned files under root with ``npm pack`` (the npm
    registry), each checked against its SHA-384; files already there and
    intact are kept. Returns the names fetched."""
    missing = [a for a in ASSETS.values() if not _intact(root / a.name, a)]
    fetched: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in sorted({a.package for a in missing}):
            out = subprocess.run(
                ["npm", "pack", package, "--silent", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            tarball = Path(tmp) / out.strip().splitlines()[-1]
            with tarfile.open(tarball) as tar:
                for a in (a for a in missing if a.package == package):
                    member = tar.extractfile(f"package/{a.file}")
                    data = member.read() if member is not None else b""
                    if _sha384(data) != a.sha384:
                        raise SystemExit(f"{a.name} from npm does not match its pinned SHA-384")
                    target = root / a.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    fetched.append(a.name)
    return fetched


def _intact(path: Path, a: Asset) -> bool:
    try:
        return _sha384(path.read_bytes()) == a.sha384
    except OSError:
        return False


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else ASSET_DIR
    fetched = fetch(root)
    print(f"GraphiQL assets in {root}: {len(ASSETS)} pinned, {len(fetched)} fetched")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
