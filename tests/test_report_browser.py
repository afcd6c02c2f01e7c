"""The report in a real browser: headless Chromium loads it with no console errors, no network
requests, and every image decoded; a full-page screenshot is saved under the test's tmp folder.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands on
fd 3, replies on fd 4, NUL-terminated JSON), so no Python package is needed. The test installs the
Debian package ``chromium`` when it is missing and it can (root + apt-get); it is skipped only when no
browser can be installed, and says so.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from report_fixtures import ALL_KINDS, eval_run, fertility_run, heads_run, layers_run, neurons_run, odd_run  # noqa: I001

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)
TIMEOUT = 90.0  # seconds for any one DevTools reply or page load


def find_browser() -> str | None:
    env = os.environ.get("BABELSCOPE_BROWSER")
    if env and shutil.which(env):
        return shutil.which(env)
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def install_browser() -> str | None:
    """``apt-get install -y chromium`` when possible (root with apt-get); the browser path or None."""
    if find_browser():
        return find_browser()
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = "apt-get install -y chromium || (apt-get update && apt-get install -y chromium)"
        subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, timeout=900, check=False)
    return find_browser()


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are close-on-exec fds >= 10 (never 3 or 4, which the child needs)."""
    import fcntl

    r, w = os.pipe()
    hi = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(r)
    os.close(w)
    return hi


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, browser: str, user_data_dir: Path):
        cmd_r, self._cmd_w = _high_pipe()  # we write commands, Chromium reads them on its fd 3
        self._out_r, out_w = _high_pipe()  # Chromium writes replies on its fd 4, we read

        def wire():  # in the child before exec; the pipe ends sit at fds >= 10, so 3 and 4 are free
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self.proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            close_fds=False,  # keep the inheritable fds 3 and 4 that wire() made (the rest are close-on-exec)
        )
        os.close(cmd_r)
        os.close(out_w)
        self._next_id, self._buf, self.events = 0, b"", []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + TIMEOUT
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._out_r)


def open_report(browser: str, html: Path, tmp: Path, screenshot: Path, script: str = "null") -> dict:
    """Load ``html``; return console errors, exceptions, outside requests, image states, the page height
    and the value of ``script`` (a JavaScript expression run after the load); save a screenshot."""
    tmp.mkdir(parents=True, exist_ok=True)
    dt = DevTools(browser, tmp / "profile")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
        dt.wait_for("Page.loadEventFired")
        images = dt.send(
            "Runtime.evaluate",
            {
                "returnByValue": True,
                "expression": """
            Promise.all([...document.images].map(i => i.decode().then(() => true, () => false)))
              .then(ok => [...document.images].map((i, k) => ({alt: i.alt, ok: ok[k] && i.complete
                 && i.naturalWidth > 0, table: !!document.getElementById(i.dataset.table)})))""",
                "awaitPromise": True,
            },
            session=session,
        )["result"]["value"]
        value = dt.send("Runtime.evaluate", {"expression": script, "returnByValue": True, "awaitPromise": True},
                        session=session)["result"].get("value")
        metrics = dt.send("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = dt.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 16000), "scale": 1},
            },
            session=session,
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        time.sleep(0.3)  # let late console messages arrive
        dt.send("Runtime.evaluate", {"expression": "1"}, session=session)
    finally:
        dt.close()
    errors, requests = [], []
    for ev in dt.events:
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(str(params.get("args")))
        elif method == "Runtime.exceptionThrown":
            errors.append(str(params.get("exceptionDetails")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                requests.append(url)
    return {"errors": errors, "requests": requests, "images": images, "height": size["height"], "value": value}


@pytest.fixture(scope="module")
def browser():
    path = install_browser()
    if not path:
        pytest.skip(
            "no headless browser: Chromium is not installed and could not be installed here "
            "(install the Debian package `chromium`, or set BABELSCOPE_BROWSER to a Chrome/Chromium binary)"
        )
    return path


def test_report_opens_in_chromium_without_errors(browser, tmp_path):
    from babelscope.report import write_report

    paths = [make(tmp_path / "runs").path for make in ALL_KINDS.values()] + [odd_run(tmp_path / "runs").path]
    html = write_report(paths, tmp_path / "report.html", strict=True)
    shot = tmp_path / "report.png"
    seen = open_report(browser, html, tmp_path / "chromium", shot)
    assert seen["errors"] == [], seen["errors"]
    assert seen["requests"] == [], f"the report made network requests: {seen['requests']}"
    assert len(seen["images"]) >= 12  # every kind of run contributed figures
    assert all(img["ok"] for img in seen["images"]), [i["alt"][:60] for i in seen["images"] if not i["ok"]]
    assert all(img["alt"].strip() and img["table"] for img in seen["images"])
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot} ({seen['height']} px tall)")


CLICK_AND_READ = """(() => {
  const table = document.querySelector("#across table.sortable");
  const column = [...table.tHead.rows[0].cells].findIndex(th => th.textContent.startsWith("continuation: accuracy"));
  const read = () => [...table.tBodies[0].rows].map(r => [r.cells[0].textContent, r.cells[column].textContent]);
  const before = read();
  table.tHead.rows[0].cells[column].click();
  const up = read();
  table.tHead.rows[0].cells[column].click();
  return {before, up, down: read(), sort: table.tHead.rows[0].cells[column].getAttribute("aria-sort"),
          first: document.querySelector("main h3").textContent};
})()"""


def test_results_first_and_tables_sort_on_click(browser, tmp_path):
    """The report opens with results per language; a click on a heading sorts numerically, a second reverses."""
    from babelscope.report import write_report

    acc = {"eng_Latn": 0.9, "fra_Latn": 0.15, "deu_Latn": 0.5, "rus_Cyrl": 1e-5, "zho_Hans": 0.7}  # "1e-05" > "0.9"
    runs = [eval_run(tmp_path / "runs", acc=acc), fertility_run(tmp_path / "runs"), heads_run(tmp_path / "runs"),
            neurons_run(tmp_path / "runs"), layers_run(tmp_path / "runs")]
    html = write_report([r.path for r in runs], tmp_path / "report.html", strict=True)
    seen = open_report(browser, html, tmp_path / "chromium", tmp_path / "five.png", CLICK_AND_READ)
    assert seen["errors"] == [] and seen["requests"] == []
    got = seen["value"]
    assert got["first"] == "Results per language"
    assert [lang for lang, _ in got["before"]] == list(acc)  # the run's order until a click
    ascending = sorted(acc, key=acc.get)  # numerically, not as text: 1e-05 < 0.15 < 0.5 < 0.7 < 0.9
    assert [lang for lang, _ in got["up"]] == ascending
    assert [lang for lang, _ in got["down"]] == ascending[::-1] and got["sort"] == "descending"
    # a short page: curated sections, no generic dumps (these five runs made 25 figures, 22,000 px before)
    page_html = html.read_text(encoding="utf-8")
    assert page_html.count("<img") <= 10 and page_html.count("<article") <= 21
    assert seen["height"] < 12_000, seen["height"]


def test_broken_page_is_caught(browser, tmp_path):
    """The check can fail: a console error, a broken image and an outside request are all seen."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="x" src="data:image/png;base64,AAAA">'
        '<img alt="y" src="http://127.0.0.1:9/nothing.png">'
        "<script>console.error('boom')</script></body></html>"
    )
    seen = open_report(browser, page, tmp_path / "chromium", tmp_path / "broken.png")
    assert any("boom" in e for e in seen["errors"])
    assert seen["requests"] == ["http://127.0.0.1:9/nothing.png"]
    assert [img["ok"] for img in seen["images"]] == [False, False]
