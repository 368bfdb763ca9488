"""`framegram serve`'s JSON API and pages through Starlette's test client, on an index of real videos."""

from __future__ import annotations

import json
import os
import tempfile
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from framegram.datasets.distort import render_query
from framegram.search import VideoIndex, add_videos
from framegram.serve import create_app

START = 8.0  #: seconds into world.mp4 where the distorted clip starts


@pytest.fixture(scope="module")
def index(videos, world, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve") / "index"
    add_videos([videos["bikes.mp4"], videos["carphone_pristine.mp4"], world], folder)
    return folder


@pytest.fixture(scope="module")
def client(index) -> TestClient:
    return TestClient(create_app(index, upload_limit=3 * 2**20))


@pytest.fixture(scope="module")
def distorted(world, tmp_path_factory) -> Path:
    return render_query(world, START, 10.0, "combo-3", tmp_path_factory.mktemp("q") / "clip.mp4").path


def test_search_api_answers_what_the_cli_answers(client, index, distorted):
    got = client.post("/api/search", files={"clip": ("clip.mp4", distorted.read_bytes(), "video/mp4")})
    assert got.status_code == 200
    cli = subprocess.run([sys.executable, "-m", "framegram", "search", str(distorted), "--index", str(index), "--json"],
                         capture_output=True, text=True, timeout=300, check=True)
    expected = json.loads(cli.stdout)
    assert [m["ref_id"] for m in got.json()] == [m["ref_id"] for m in expected] and expected
    best = got.json()[0]
    assert best["ref_id"] == "world.mp4" and abs(best["ref_start"] - START) < 1.0
    assert best["score"] == pytest.approx(expected[0]["score"])


def test_health_and_videos(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["videos"] == 3
    videos = client.get("/api/videos").json()
    assert [v["ref_id"] for v in videos] == ["bikes.mp4", "carphone_pristine.mp4", "world.mp4"]
    assert all(v["duration"] > 0 and v["number"] == k for k, v in enumerate(videos))


@pytest.mark.parametrize("case", ["text renamed .mp4", "over the limit", "empty", "too short"])
def test_bad_uploads_get_a_json_error_and_leave_nothing_behind(case, client, videos, tmp_path):
    from framegram.datasets.distort import render_query as render

    if case == "text renamed .mp4":
        body, status, words = b"this is not a video\n" * 20, 400, "not a video"
    elif case == "over the limit":
        body, status, words = os.urandom(3 * 2**20 + 1), 413, "larger than the limit"
    elif case == "empty":
        body, status, words = b"", 400, "empty"
    else:
        body, status, words = render(videos["bikes.mp4"], 1.0, 1.0, "none", tmp_path / "short.mp4").path.read_bytes(), 400, "too short"
    before = set(Path(tempfile.gettempdir()).glob("framegram-upload-*"))
    got = client.post("/api/search", files={"clip": ("clip.mp4", body, "video/mp4")})
    assert got.status_code == status and words in got.json()["error"]
    assert set(Path(tempfile.gettempdir()).glob("framegram-upload-*")) == before  # the upload is gone


def test_a_huge_or_unsized_body_is_refused_before_it_is_stored(client, index):
    def chunks():
        yield b"x" * 1000

    huge = client.post("/api/search", content=b"", headers={"content-length": str(50 * 2**20), "content-type": "multipart/form-data; boundary=x"})
    assert huge.status_code == 413 and "larger than the limit" in huge.json()["error"]
    unsized = client.post("/api/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert unsized.status_code == 411 and "Content-Length" in unsized.json()["error"]
    rebound = TestClient(create_app(index, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://attacker.example")
    assert rebound.get("/api/videos").status_code == 400  # a page on another domain rebound to us reads nothing
    assert TestClient(create_app(index, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://127.0.0.1").get("/api/videos").status_code == 200


def test_results_page_shows_the_match_and_a_player_at_its_start(client, distorted):
    page = client.post("/search", files={"clip": ("clip.mp4", distorted.read_bytes(), "video/mp4")})
    assert page.status_code == 200
    assert "world.mp4" in page.text and 'src="/media/2#t=' in page.text and "data:image/png;base64," in page.text


def test_a_script_in_a_file_name_is_shown_as_text(client):
    name = "<script>alert(1)</script>.mp4"
    page = client.post("/search", files={"clip": (name, b"not a video", "video/mp4")})
    assert page.status_code == 400
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page.text


def test_media_is_served_by_number_with_ranges_and_never_by_path(client, world):
    size = world.stat().st_size
    part = client.get("/media/2", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == world.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert client.get("/media/3").status_code == 404
    assert client.get("/media/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


def test_a_missing_index_is_said_plainly(tmp_path):
    broken = TestClient(create_app(tmp_path / "nothing-here"))
    assert broken.get("/api/health").status_code == 503 and "error" in broken.get("/api/health").json()
    page = broken.get("/")
    assert page.status_code == 503 and "The index cannot be read" in page.text


def test_browse_video_page_and_tag_search(client):
    listing = client.get("/videos")
    assert listing.status_code == 200
    for k, name in enumerate(["bikes.mp4", "carphone_pristine.mp4", "world.mp4"]):
        assert name in listing.text and f'src="/catalog/{k}/thumb.jpg"' in listing.text
    thumb = client.get("/catalog/0/thumb.jpg")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    page = client.get("/videos/0")
    assert page.status_code == 200 and "bikes.mp4" in page.text
    assert client.get("/catalog/0/picture.png").headers["content-type"] == "image/png"
    assert client.get("/catalog/0/keyframe-0.jpg").status_code == 200
    from framegram.serve.catalog import cached_card
    from framegram.search import VideoIndex

    card = cached_card(VideoIndex.open(client.app.state.index).videos["bikes.mp4"].sha256)
    assert card.shots and all(len(s.tags) == 3 and 0 < s.tags[0][1] <= 1 for s in card.shots)
    label = card.shots[0].tags[0][0]
    assert label in page.text
    found = client.get("/tags", params={"q": label})
    assert found.status_code == 200 and "bikes.mp4" in found.text and "/videos/0#shot-0" in found.text
    assert client.get("/catalog/0/../../etc/passwd").status_code == 404
    assert client.get("/catalog/0/card.json").status_code == 404
    assert client.get("/videos/9").status_code == 404


def test_background_description_makes_the_tag_search_cover_every_video(index, tmp_path, monkeypatch):
    from framegram.serve.catalog import cached_card

    monkeypatch.setenv("FRAMEGRAM_CACHE", str(tmp_path / "cache"))  # no card exists yet
    app = create_app(index, describe=True)
    app.state.describer.thread.join(timeout=300)
    assert app.state.describer.done == 3 and app.state.describer.failed == 0
    world = VideoIndex.open(index).videos["world.mp4"]
    label = cached_card(world.sha256).shots[0].tags[0][0]
    found = TestClient(app).get("/tags", params={"q": label})  # no page of world.mp4 was opened
    assert "world.mp4" in found.text and "3 of 3 videos described" in found.text


def test_no_match_is_said_plainly_with_the_best_score(client, videos, tmp_path):
    clip = render_query(videos["bigbuckbunny.mp4"], 0.0, 4.0, "none", tmp_path / "unindexed.mp4").path
    assert client.post("/api/search", files={"clip": ("unindexed.mp4", clip.read_bytes(), "video/mp4")}).json() == []
    page = client.post("/search", files={"clip": ("unindexed.mp4", clip.read_bytes(), "video/mp4")})
    assert page.status_code == 200 and "No match." in page.text
    assert "The best score was" in page.text and "a match needs 0.2" in page.text


def test_searches_keep_working_while_the_index_grows(client, index, distorted, videos):
    """Searches in a loop while another thread adds a video to the same index: none fails."""
    import threading

    body = distorted.read_bytes()
    adding = threading.Thread(target=add_videos, args=([videos["carphone_distorted.mp4"]], index))
    adding.start()
    answers = []
    while adding.is_alive() or len(answers) < 2:
        got = client.post("/api/search", files={"clip": ("clip.mp4", body, "video/mp4")})
        assert got.status_code == 200
        answers.append(got.json()[0]["ref_id"])
    adding.join()
    assert set(answers) == {"world.mp4"}
    assert len(VideoIndex.open(index)) == 4 and client.get("/api/health").json()["videos"] == 4
