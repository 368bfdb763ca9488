"""`framegram serve` end to end in a real headless browser: Playwright driving Debian's chromium.

The server runs in a thread (uvicorn) over an index of real videos; the tests upload files through
the page as a user would. Screenshots of each page go to $FRAMEGRAM_SCREENSHOTS (default: a
temporary folder of the run).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the test extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on this machine (make test installs Debian's with apt)", allow_module_level=True)

from framegram.datasets.distort import render_query  # noqa: E402
from framegram.search import add_videos  # noqa: E402
from framegram.serve import create_app  # noqa: E402

START = 8.0  #: seconds into world.mp4 where the uploaded clip starts
LIMIT = 3 * 2**20


@pytest.fixture(scope="module")
def server(videos, world, tmp_path_factory):
    import uvicorn

    index = tmp_path_factory.mktemp("browser") / "index"
    add_videos([videos["bikes.mp4"], videos["carphone_pristine.mp4"], world], index)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(index, upload_limit=LIMIT), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        # root in a container: chromium's sandbox needs user namespaces it may not have
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("FRAMEGRAM_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def upload(page, server: str, path: Path | dict) -> None:
    """Choose `path` (or a {name, mimeType, buffer} file) in the page's picker and submit."""
    page.goto(server + "/")
    page.set_input_files("#clip", path if isinstance(path, dict) else str(path))
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Matches for'), h1:has-text('cannot be searched')", timeout=120_000)


def test_a_distorted_clip_is_found_and_played_from_its_start(page, server, world, tmp_path, shots_dir):
    clip = render_query(world, START, 10.0, "combo-3", tmp_path / "holiday.mp4").path
    upload(page, server, clip)
    page.screenshot(path=str(shots_dir / "results.png"), full_page=True)
    first = page.locator("li.match").first
    assert first.locator(".ref").inner_text() == "world.mp4"
    start = float(first.get_attribute("data-start"))
    assert abs(start - START) < 1.0
    assert start - 0.1 < float(first.locator(".range").inner_text().split("–")[0]) < start + 0.1
    player = first.locator("video.player")
    player.scroll_into_view_if_needed()
    position = page.wait_for_function(
        "v => v.readyState >= 1 && v.currentTime > 0 ? v.currentTime : null", arg=player.element_handle(), timeout=30_000)
    assert abs(position.json_value() - start) < 0.5  # the player starts at the match


def test_browse_open_a_video_and_find_it_by_a_tag(page, server, shots_dir):
    page.goto(server + "/videos")
    page.screenshot(path=str(shots_dir / "videos.png"), full_page=True)
    assert page.locator("li.card").count() == 3
    page.click("li.card >> text=bikes.mp4")
    page.wait_for_selector("table.shots")
    page.screenshot(path=str(shots_dir / "video.png"), full_page=True)
    assert page.locator("img.picture").evaluate("img => img.complete && img.naturalWidth > 0")
    label = page.locator("ul.tags a").first.inner_text()
    page.goto(server + "/videos")
    page.fill("input[name=q]", label)
    page.click("form[action='/tags'] button")
    page.wait_for_selector("ol.hits")
    page.screenshot(path=str(shots_dir / "tags.png"), full_page=True)
    assert "bikes.mp4" in page.locator("ol.hits").inner_text()


@pytest.mark.parametrize("case", ["text renamed .mp4", "over the limit", "script in the name"])
def test_bad_uploads_are_said_plainly(case, page, server, tmp_path, shots_dir):
    if case == "text renamed .mp4":
        path, words = tmp_path / "notes.mp4", "not a video"
        path.write_text("this is a text file\n" * 50)
    elif case == "over the limit":
        path, words = tmp_path / "huge.mp4", "larger than the limit"
        path.write_bytes(os.urandom(LIMIT + 1))
    else:  # a name no file system allows ("/"), as a browser may still send it
        path, words = {"name": "<script>alert(1)</script>.mp4", "mimeType": "video/mp4", "buffer": b"not a video"}, "not a video"
    upload(page, server, path)
    page.screenshot(path=str(shots_dir / f"refused-{case.split()[0]}.png"), full_page=True)
    assert words in page.locator("p.error").inner_text()
    if case == "script in the name":
        assert page.locator(".filename").inner_text() == path["name"]  # shown as text
        assert page.dialogs == []  # and never run
