"""GraphiQL in a real browser with no internet: headless Chromium (Debian's
``chromium``, driven over the DevTools protocol on a pipe) opens the dev
gateway's ``/graphql``, waits for the editor, runs a query with the page's
own Run button and reads the answer from the page. Every file the page
loaded must come from the gateway.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.wait import eventually_sync

SCREENSHOT = Path(tempfile.gettempdir()) / "dbx-graphiql.png"
DEADLINE_S = 20.0


class Browser:
    """Headless Chromium with ``--remote-debugging-pipe``: DevTools commands
    go in on its fd 3 and answers come out of its fd 4, NUL-terminated JSON."""

    def __init__(self, url: str, profile: str) -> None:
        to_child, self._in = os.pipe()
        self._out, from_child = os.pipe()

        def fds_3_and_4() -> None:  # in the child, before exec
            a = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe"]
        # no background connections (this network refuses them), a fresh profile
        flags += ["--disable-background-networking", "--disable-component-update"]
        flags += ["--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,800"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")
        self.proc = subprocess.Popen(
            [shutil.which("chromium") or "chromium", *flags, url],
            preexec_fn=fds_3_and_4,
            close_fds=False,  # keeps 3 and 4 (every other fd is close-on-exec)
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buf = b""
        self._next_id = 0
        self.session: str | None = None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One command's result (events on the way are dropped)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._in, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + DEADLINE_S
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._out], [], [], left)[0]:
                    raise TimeoutError(f"no answer to {method}")
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed its DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]

    def attach(self) -> None:
        """Attach to the page that chromium opened."""
        pages = eventually_sync(
            lambda: [
                t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
            ],
            DEADLINE_S,
            "a page opened by chromium",
            period_s=0.05,
        )
        target = pages[0]["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll a page expression until it is truthy; its value."""
        try:
            return eventually_sync(lambda: self.evaluate(expression), DEADLINE_S, what, 0.1)
        except AssertionError:
            shot = self.screenshot()
            text = self.evaluate("document.body ? document.body.innerText.slice(0, 300) : ''")
            raise AssertionError(
                f"timed out waiting for {what} (screenshot {shot}); the page says: {text!r}"
            ) from None

    def screenshot(self) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        SCREENSHOT.write_bytes(base64.b64decode(data))
        return SCREENSHOT


EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
RESPONSE = "document.querySelector('.graphiql-response .CodeMirror')"
RUN = "document.querySelector('.graphiql-execute-button')"


def run_query_in_graphiql(gateway_url: str, query: str, bearer: str) -> dict[str, Any]:
    """Open GraphiQL with the query and an Authorization header, press Run,
    and return the JSON the page shows and the URLs of what it loaded."""
    params = {"q": query, "headers": json.dumps({"Authorization": f"Bearer {bearer}"})}
    with tempfile.TemporaryDirectory(prefix="dbx-chromium-") as profile:
        browser = Browser(f"{gateway_url}/graphql?{urlencode(params)}", profile)
        try:
            browser.attach()
            browser.wait_for(f"{EDITOR} && {RUN} && {EDITOR}.CodeMirror.getValue()", "the editor")
            browser.evaluate(f"{RUN}.click()")
            text = browser.wait_for(
                f"{RESPONSE} && {RESPONSE}.CodeMirror.getValue().includes('\"data\"')"
                f" && {RESPONSE}.CodeMirror.getValue()",
                "the answer",
            )
            browser.screenshot()
            loaded = browser.evaluate(
                "[location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
            )
        finally:
            browser.close()
    return {"answer": json.loads(text), "loaded": loaded}


async def test_graphiql_runs_a_query_offline(gateway_url, token, make_org):
    assert shutil.which("chromium"), "no chromium: `deploy/local/stack up` installs it"
    org = await make_org(name=f"GraphiQL org {uuid.uuid4().hex[:8]}")
    query = "{ viewer { orgId organization { name } } }"
    seen = await asyncio.to_thread(run_query_in_graphiql, gateway_url, query, token(org))
    viewer = seen["answer"]["data"]["viewer"]
    assert viewer["orgId"] == str(org)
    assert viewer["organization"]["name"].startswith("GraphiQL org ")
    foreign = [u for u in seen["loaded"] if not u.startswith(gateway_url + "/")]
    assert not foreign, f"the page loaded files from elsewhere: {foreign}"
    assert any("/graphiql/assets/graphiql@" in u for u in seen["loaded"])


async def test_graphiql_files_are_dev_only_and_need_no_token(client, prod_gateway):
    path = "/graphiql/assets/react@18.2.0/umd/react.production.min.js"
    r = await client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/graphiql/assets/react@18.2.0/package.json")).status_code == 404
    async with httpx.AsyncClient(base_url=prod_gateway.url) as prod:
        refused = await prod.get(path)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"] == "The GraphQL IDE is disabled"
