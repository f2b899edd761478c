"""The web pages we ship, opened in a real browser: the study's report.html and the documentation site.

The site is built here (``mkdocs build --strict``), or taken from ``LABELSMOOTH_SITE`` when that names a
site built from this checkout (.ci/run builds one, with the notebooks executed, before the tests; a site
older than the docs or the sources is refused). Headless Chromium from the system packages (``apt-get
install chromium``), driven by Playwright for Python pointed at that executable (nothing downloads a
browser build). Without a browser the tests skip, except under CI (``CI=true``), where a missing browser is
a failure. Screenshots go to a temporary folder (``LABELSMOOTH_SCREENSHOTS`` names another), never into
the repository.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from study_fixtures import subprocess_env, tiny

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1280


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI needs a browser for these tests: apt-get install chromium (see .ci/run)")
    pytest.skip("no Chromium on this machine (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("CI"):
        import playwright.sync_api as pw  # the test extra installs it; a failure here is real
    else:
        pw = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("LABELSMOOTH_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url, wait_until="load")
    return page, problems


def _page_scrolls_sideways(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


# ------------------------------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    pytest.importorskip("matplotlib")
    from labelsmooth.study import run

    out = tmp_path_factory.mktemp("study")
    run(tiny(), out=out)
    return out / "report.html"


def test_report_in_a_browser(browser, report, shots):
    page, problems = _open(browser, report.as_uri())
    page.screenshot(path=str(shots / "report.png"), full_page=True)
    assert not problems, problems

    images = page.evaluate(
        "Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0, alt: i.alt}))"
    )
    assert images, "the report has no figures"
    assert all(i["ok"] for i in images), "an image did not load"
    assert all(len(i["alt"].split()) >= 4 for i in images), [i["alt"] for i in images]

    assert not _page_scrolls_sideways(page), "the report scrolls sideways at 1280 px"

    table = page.locator("table.sortable").last
    column = page.evaluate(
        """t => Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent.trim() === 'seed')""",
        table.element_handle(),
    )
    assert column >= 0, "the all-runs table has a seed column"

    def values():
        return [float(v) for v in table.locator(f"tbody tr td:nth-child({column + 1})").all_inner_texts()]

    before = values()
    table.locator(f"thead th:nth-child({column + 1})").click()
    ascending = values()
    table.locator(f"thead th:nth-child({column + 1})").click()
    descending = values()
    assert len(set(before)) > 1, "the seed column should hold more than one seed"
    assert ascending == sorted(before)
    assert descending == sorted(before, reverse=True)


# ------------------------------------------------------------------------------------------ the site
SITE_ENV = "LABELSMOOTH_SITE"
"""A site already built from this checkout by a ``mkdocs build --strict`` that succeeded (.ci/run builds one
before the tests and stops if it fails): the tests open it instead of building their own (about 10 s of
CPU). Only its age is checked here, not how it was built."""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    built = os.environ.get(SITE_ENV)
    if built:
        folder = Path(built)
        assert (folder / "index.html").is_file(), f"{SITE_ENV}={built!r} holds no built site (no index.html)"
        stale = [p for p in (ROOT / "docs", ROOT / "src" / "labelsmooth", ROOT / "mkdocs.yml")
                 if _newest(p) > (folder / "index.html").stat().st_mtime]  # fmt: skip
        assert not stale, f"{SITE_ENV}={built!r} is older than {[str(p) for p in stale]}: rebuild it"
        return folder
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    env = subprocess_env()
    env["LABELSMOOTH_DOCS_EXECUTE"] = "false"  # the notebooks are executed by test_exercises.py
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


_SOURCES = {".md", ".py", ".yml", ".css", ".js", ".toml"}


def _newest(path: Path) -> float:
    """The latest modification time of a file, or of the site's sources under a folder."""
    if path.is_file():
        return path.stat().st_mtime
    return max((p.stat().st_mtime for p in path.rglob("*") if p.suffix in _SOURCES and p.is_file()),
               default=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def site_url(site):
    server, url = _serve(site)
    yield url
    server.shutdown()


def _maths(page) -> int:
    page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.Hub.queue.running === 0 "
                           "&& MathJax.Hub.queue.pending === 0", timeout=20000)  # fmt: skip
    return page.evaluate("document.querySelectorAll('.MathJax, .MathJax_Display').length")


@pytest.mark.parametrize(
    "path",
    ["index.html", "losses.html", "exercises/04_logit_gap.html", "api/theory.html"],
    ids=["home", "guide", "exercise", "api"],
)
def test_site_page_in_a_browser(browser, site_url, shots, path):
    page, problems = _open(browser, f"{site_url}/{path}")
    rendered = _maths(page)
    page.screenshot(path=str(shots / (path.replace("/", "_") + ".png")))
    assert rendered > 0, f"{path}: no rendered maths"
    errors = page.evaluate("document.querySelectorAll('.MathJax_Error, merror').length")
    assert errors == 0, f"{path}: {errors} formulas failed to render"
    # MathJax 2 probes the browser's font support with an about:blank font, which Chromium refuses by design
    failed = [p for p in problems if p.startswith(("request failed", "page error")) and "about:blank" not in p]
    assert not failed, failed
    assert not _page_scrolls_sideways(page), f"{path} scrolls sideways at 1280 px"


def test_site_navigation(browser, site_url):
    page, _ = _open(browser, f"{site_url}/index.html")
    page.locator("nav.md-nav--primary a.md-nav__link", has_text="The study").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/study.html")
    assert "labelsmooth study" in page.locator("h1").first.inner_text()
    page.locator("nav.md-nav--primary a.md-nav__link", has_text="theory").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/api/theory.html")
    assert page.locator("[id='labelsmooth.theory.optimal_logit_gap']").count() == 1
