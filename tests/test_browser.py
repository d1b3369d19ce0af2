"""A real browser opens the night's report from disk: no console message, every chart drawn.

Headless Chromium (Debian's `chromium`, installed by `make test` when missing) loads each
page with `--dump-dom`; a chart counts as drawn when its `data-chart` block holds plotly's
rendered `<svg class="main-svg">`. Chromium prints every console message (errors, uncaught
exceptions, failed loads) as a `CONSOLE` line on stderr with `--enable-logging=stderr`;
a drawn report has none. Pages load two at a time (each Chromium mostly waits).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _tiny_night import TinyNights, tiny_nights

from cjm_analytics.doctor import find_chromium

pytestmark = pytest.mark.browser

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("chromium not found: `make test` installs it (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def nights() -> TinyNights:
    return tiny_nights()


def open_pages(chromium: str, pages: list[Path]) -> dict[str, tuple[str, str]]:
    """page name -> (DOM after load, console lines), each page in its own fresh profile.

    Two pages load at a time: each Chromium is mostly waiting, but eight at once on two
    cores took longer (28 s) than one after the other (18 s)."""

    def load(page: Path, profiles: str) -> tuple[str, tuple[str, str]]:
        done = subprocess.run(
            [
                chromium,
                *FLAGS,
                f"--user-data-dir={profiles}/{page.stem}",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        return page.name, (done.stdout, "\n".join(console))

    with (
        tempfile.TemporaryDirectory(prefix="cjm-chromium-") as profiles,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        return dict(pool.map(lambda page: load(page, profiles), pages))


def undrawn_charts(dom: str) -> list[str]:
    """The data-chart names whose block has no rendered plotly svg."""
    blocks = re.split(r'data-chart="([a-z_]+)"', dom)
    return [
        name
        for name, block in zip(blocks[1::2], blocks[2::2], strict=True)
        if 'class="main-svg"' not in block
    ]


def test_report_opens_offline_with_every_chart_drawn(chromium: str, nights: TinyNights) -> None:
    assert nights.second.report_path is not None
    folder = nights.second.report_path.parent
    pages = sorted(folder.glob("*.html"))
    results = open_pages(chromium, pages)
    charts = 0
    for name, (dom, console) in results.items():
        assert dom.strip(), f"{name}: chromium returned no DOM"
        assert console == "", f"{name}: console messages:\n{console}"
        assert undrawn_charts(dom) == [], f"{name}: charts not drawn"
        assert "not available" not in dom, f"{name}: a chart lacks its tables"
        charts += dom.count("data-chart=")
    # the index's funnel + 10 charts on the topic pages
    assert charts == 11


def test_broken_page_is_caught(chromium: str, tmp_path: Path) -> None:
    # the checks above can fail: a script error and an undrawn chart are seen
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><div data-chart='x'></div><script>undefined_function()</script></body></html>",
        encoding="utf-8",
    )
    dom, console = open_pages(chromium, [page])["broken.html"]
    assert "undefined_function is not defined" in console
    assert undrawn_charts(dom) == ["x"]
