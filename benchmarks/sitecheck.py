"""Check that a published asv site renders without internet, in headless Chromium.

    python -m benchmarks.sitecheck .asv/html [--screenshot DIR]

Serves the site from 127.0.0.1 (asv's pages fetch their JSON, which browsers refuse over file://),
opens the summary grid and one graph page in Chromium with every other host unresolvable, and checks from the
rendered DOM that no external script was needed (asv's "failed to load" page did not appear), the grid
lists benchmarks, and flot drew plots with data points. To count points, the served copy of
``index.html`` (not the files on disk) gets one extra script that wraps ``$.plot`` and records the
number of plots and points it was given. Exit 0 when both pages pass; 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # no name resolves but the local server's address: the check is offline even on a connected machine
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--virtual-time-budget=20000",
    "--window-size=1400,1000",
]
GRAPH = "bench_solvers.SpiralSolve.time_solve"
_COUNTER = """<script>
(function () {
  var orig = $.plot;
  var wrapped = function (el, data) {
    var n = 0;
    $.each(data || [], function (i, s) { n += ((s && s.data) ? s.data : (s || [])).length || 0; });
    var box = document.getElementById("nb-check");
    if (!box) { box = document.createElement("div"); box.id = "nb-check"; document.body.appendChild(box); }
    box.setAttribute("data-plots", (+box.getAttribute("data-plots") || 0) + 1);
    box.setAttribute("data-points", (+box.getAttribute("data-points") || 0) + n);
    return orig.apply(this, arguments);
  };
  $.extend(wrapped, orig);
  $.plot = wrapped;
})();
</script>
"""


def chromium() -> str | None:
    """The Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in ("/", "/index.html"):
            return super().do_GET()
        text = (Path(self.directory) / "index.html").read_text()
        body = text.replace("</head>", _COUNTER + "</head>", 1).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _render(browser: str, url: str, screenshot: Path | None) -> str:
    with tempfile.TemporaryDirectory(prefix="nodebench-chromium-") as profile:
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        if screenshot is not None:
            subprocess.run(
                [browser, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=180
            )
        proc = subprocess.run(
            [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180
        )
    return proc.stdout


def _counts(dom: str) -> tuple[int, int]:
    m = re.search(r'id="nb-check"[^>]*', dom)
    if not m:
        return 0, 0
    plots = re.search(r'data-plots="(\d+)"', m.group(0))
    points = re.search(r'data-points="(\d+)"', m.group(0))
    return int(plots.group(1)) if plots else 0, int(points.group(1)) if points else 0


def check(
    site: Path,
    screenshots: Path | None = None,
    graph: str = GRAPH,
    pages: tuple[str, ...] = ("grid", "graph"),
) -> list[str]:
    """Problems found rendering ``site`` (empty when the grid and the graph page render with data)."""
    browser = chromium()
    if browser is None:
        return ["chromium not found (apt-get install chromium)"]
    handler = functools.partial(_Handler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    problems = []
    try:
        for label, url in (("grid", base), ("graph", f"{base}#{graph}")):
            if label not in pages:
                continue
            shot = None if screenshots is None else screenshots / f"asv-{label}.png"
            dom = _render(browser, url, shot)
            plots, points = _counts(dom)
            print(f"{label}: {url} -> {plots} plots, {points} data points, {len(dom)} bytes of DOM")
            if "airspeed velocity error" in dom or "failed to load" in dom or not dom:
                problems.append(f"{label}: the page did not load its scripts")
            if label == "grid" and dom.count("benchmark-container") < 3:
                problems.append(f"grid: {dom.count('benchmark-container')} benchmarks listed")
            if label == "graph" and "flot-base" not in dom:
                problems.append("graph: no flot canvas")
            if plots == 0 or points == 0:
                problems.append(f"{label}: flot drew {plots} plots with {points} data points")
    finally:
        server.shutdown()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sitecheck", description=__doc__.splitlines()[0]
    )
    parser.add_argument("site", type=Path)
    parser.add_argument("--screenshot", type=Path, help="folder for asv-grid.png and asv-graph.png")
    parser.add_argument("--graph", default=GRAPH, help="benchmark whose graph page is opened")
    args = parser.parse_args(argv)
    if chromium() is None:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    if args.screenshot:
        args.screenshot.mkdir(parents=True, exist_ok=True)
    problems = check(args.site, args.screenshot, args.graph)
    for p in problems:
        print("SITE FAIL", p, file=sys.stderr)
    print("site: ok" if not problems else f"site: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
