"""The leaderboard site in a real headless browser (Debian's chromium): images, console, tables, sorting.

The pages are served over HTTP from a local server and loaded one by one in an iframe of a
harness page that reports, as JSON in its own DOM (chromium --dump-dom), what each page holds:
images and whether each decoded, tables and their rows, the protocol block, and whether a
click on a header sorts the runs. Every console message of every page (a failed image load is
one) fails the test. Without chromium the test is skipped, except under CI (CI set): there a
missing browser is an error, so the check cannot silently disappear.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaebench.leaderboard import build_leaderboard
from vaebench.results import Metric, write_record

from .test_leaderboard import rec

REPO = Path(__file__).resolve().parents[1]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

if BROWSER is None:
    if os.environ.get("CI"):
        raise RuntimeError(
            "CI is set but chromium is not installed: .ci/run installs it with apt-get install -y chromium"
        )
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

HARNESS = """<!doctype html><meta charset="utf-8"><title>harness</title><body><pre id="result">pending</pre>
<script>
const pages = %s, out = {};
let i = 0;
function settle(img) {
  return img.complete ? Promise.resolve() : new Promise(function (r) { img.onload = img.onerror = r; });
}
function next() {
  if (i >= pages.length) { document.getElementById("result").textContent = JSON.stringify(out); return; }
  const page = pages[i++], f = document.createElement("iframe");
  f.style.width = "1400px"; f.style.height = "1000px";
  f.onload = function () {
    const d = f.contentDocument, imgs = Array.from(d.images);
    Promise.all(imgs.map(settle)).then(function () {
      const res = {title: d.title, images: imgs.length, protocol: d.querySelectorAll(".protocol").length,
        broken: imgs.filter(function (m) { return !(m.complete && m.naturalWidth > 0); })
                    .map(function (m) { return m.getAttribute("src"); }),
        tables: d.querySelectorAll("table.board").length, rows: d.querySelectorAll("table.board tbody tr").length,
        references: d.querySelectorAll("table.board tr.reference").length, sorted: null};
      const t = d.querySelector("table.board");
      if (t) {  // click the last column holding numbers twice: ascending, then descending
        const heads = t.querySelectorAll("thead th");
        let col = -1;
        t.querySelectorAll("tbody tr:not(.reference)")[0].querySelectorAll("td").forEach(function (c, j) {
          if (c.getAttribute("data-v") !== null) { col = j; }
        });
        if (col >= 0) {
          const values = function () {
            return Array.from(t.querySelectorAll("tbody tr:not(.reference)")).map(function (r) {
              return parseFloat(r.cells[col].getAttribute("data-v")); }).filter(function (x) { return !isNaN(x); });
          };
          heads[col].click();
          const up = values();
          heads[col].click();
          const down = values();
          res.sorted = up.every(function (x, k) { return k === 0 || up[k - 1] <= x; }) &&
                       down.every(function (x, k) { return k === 0 || down[k - 1] >= x; }) && up.length > 0;
          res.last_rows_reference = Array.from(t.tBodies[0].rows).slice(-res.references).every(function (r) {
            return r.classList.contains("reference"); });
        }
      }
      out[page] = res;
      f.remove();
      next();
    });
  };
  f.src = page;
  document.body.appendChild(f);
}
next();
</script>"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site from records of three tasks: paired NLL rows with an override, SNR vs K, kernels."""
    x, y = [150.0, 160.0, 170.0, 180.0], [151.0, 161.0, 171.5, 181.0]
    for seed, shift in ((0, 0.0), (1, 2.0), (2, -1.0)):
        write_record(rec("diagonal", seed, [v + shift for v in x]), tmp_path)
        write_record(rec("planar_4", seed, [v + shift for v in y]), tmp_path)
    write_record(rec("diagonal", 3, 175.0, **{"train.epochs": 3}), tmp_path)
    for cell, snr in (("elbo", [0.5, 0.05]), ("dreg", [0.5, 0.9])):
        r = rec(cell, 0, 1.0, suite="estimators")
        r.metrics = {f"encoder_snr@K={k}": Metric(v, 0.01, 10) for k, v in zip((1, 5), snr, strict=True)}
        write_record(r, tmp_path)
    r = rec("log_mean_exp", 0, 1.0, suite="kernels")
    r.suite_version = 2
    r.metrics = {
        "64x256x64/reference/fwd_ms": Metric(2.0),
        "64x256x64/fused/fwd_ms": Metric(0.5),
        "64x256x64/fused_speedup_vs_reference/fwd": Metric(4.0),
    }
    write_record(r, tmp_path)
    build_leaderboard(tmp_path)
    return tmp_path / "tables"


@functools.cache
def _quiet_handler(root: str) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=root, **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def _serve(root: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _quiet_handler(str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    return subprocess.run(
        [
            BROWSER,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check_site(folder: Path) -> dict[str, dict]:
    """Load every page of the site in chromium; fail on console messages; return what each holds."""
    pages = sorted(p.name for p in folder.glob("*.html"))
    assert "index.html" in pages
    for page in pages:  # every local link and image of every page is a file of the site
        text = (folder / page).read_text()
        for target in re.findall(r'(?:href|src)="([^"#:]+)"', text):
            assert (folder / target).is_file(), f"{page} links {target}, which is not in {folder}"
        assert "runs/" not in text, f"{page} points into the untracked runs/ folder"
    (folder / "_harness.html").write_text(HARNESS % json.dumps(pages))
    try:
        with _serve(folder) as base:
            proc = _chromium("--virtual-time-budget=20000", "--dump-dom", f"{base}/_harness.html")
    finally:
        (folder / "_harness.html").unlink()
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "console messages:\n" + "\n".join(console)
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found and found.group(1) != "pending", (
        f"the harness did not finish: {proc.stdout[-500:]} {proc.stderr[-800:]}"
    )
    return json.loads(html.unescape(found.group(1)))


def test_the_site_loads_cleanly_in_chromium(site: Path) -> None:
    report = check_site(site)
    assert set(report) == {"index.html", "iaf.html", "estimators.html", "kernels.html"}
    for page, res in report.items():
        assert res["broken"] == [], f"{page}: images that did not load: {res['broken']}"
    iaf = report["iaf.html"]
    assert iaf["tables"] == 1 and iaf["protocol"] == 1 and iaf["images"] >= 1
    assert iaf["rows"] == 3 + iaf["references"] and iaf["references"] > 0
    assert iaf["sorted"] is True and iaf["last_rows_reference"] is True
    assert report["estimators.html"]["images"] >= 1 and report["kernels.html"]["images"] == 1
    assert report["kernels.html"]["tables"] == 1 and report["kernels.html"]["rows"] == 2


def test_the_committed_site_loads_cleanly_in_chromium() -> None:
    """results/tables is what a fresh clone shows: it must open without a broken link or image."""
    folder = REPO / "results" / "tables"
    if not (folder / "index.html").is_file():
        pytest.fail("results/tables/index.html is missing: run `vaebench leaderboard --results results`")
    report = check_site(folder)
    for page, res in report.items():
        assert res["broken"] == [], f"{page}: images that did not load: {res['broken']}"
        if page != "index.html":
            assert res["tables"] >= 1 and res["protocol"] == res["tables"], page


def test_screenshot(site: Path, tmp_path: Path) -> None:
    """A screenshot is a PNG of the page as rendered (docs/ keeps two of the committed site)."""
    shot = tmp_path / "iaf.png"
    with _serve(site) as base:
        proc = _chromium("--window-size=1400,1200", "--hide-scrollbars", f"--screenshot={shot}", f"{base}/iaf.html")
    assert shot.is_file() and shot.stat().st_size > 20_000, proc.stderr[-800:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
