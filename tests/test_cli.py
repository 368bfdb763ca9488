"""The `framegram` command end to end, and the demo report."""

import json
import re
import subprocess
import sys

from PIL import Image

from framegram.demo import run_demo
from framegram.search.report import DEMO_QUERIES


def framegram_cli(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "framegram", *args], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_extract_info_show(videos, tmp_path):
    framegram_cli("extract", str(videos["bigbuckbunny.mp4"]), "-o", str(tmp_path), "--fps", "2", "--quiet")
    path = tmp_path / "bigbuckbunny.framegram.npz"
    meta = json.loads(framegram_cli("info", str(path), "--json"))
    assert meta["frames"] == 11 and meta["dim"] == 1280 and meta["fps"] == 2.0
    assert "11 x 1280 (T x D)" in framegram_cli("info", str(path))
    framegram_cli("show", str(path), "-o", str(tmp_path / "bunny.png"))
    with Image.open(tmp_path / "bunny.png") as image:
        assert image.format == "PNG" and image.width > 500


def test_demo_writes_a_self_contained_report(videos, tmp_path):
    report = run_demo(tmp_path, show_progress=False)
    html = report.read_text()
    for name in videos:
        assert name in html
    assert "Extraction timings" in html and "Framegrams of the sample videos" in html
    assert "Shots and keyframes" in html and "Same content, different pixels" in html
    # the search section finds each distorted demo clip in its own source, first
    assert "Video search" in html
    assert "Brain" in html  # the brain section: a small generated dataset fitted
    for name, _, _, distortion in DEMO_QUERIES:
        first_row = re.search(rf"<tr><td>query-{re.escape(name[:-4])}-{distortion}\.mp4</td><td>[^<]*</td><td>([^<]*)</td>", html)
        assert first_row and first_row.group(1) == name, (name, distortion)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) >= 2 * len(videos)
    assert not re.search(r'src="(?!data:)', html)  # nothing loaded from elsewhere
    assert len(list((tmp_path / "pictures").glob("*.png"))) == len(videos)
    assert len(list((tmp_path / "framegrams").glob("*.framegram.npz"))) == len(videos)
