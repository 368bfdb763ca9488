"""framegram installed from its wheel (not editable) and run outside the checkout: the demo report
has every section, the classification and signals sections filled from the results the wheel ships."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import framegram.demo  # noqa: F401  (registers every section)
from framegram.report.results import default_results_dir, packaged_results_dir
from framegram.demo import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
#: the h2 ids of the demo report (framegram.demo and the report modules it imports), in page order
SECTION_IDS = ["framegrams-of-the-sample-videos", "same-content--different-pixels", "extraction-timings",
               "shots-and-keyframes", "video-search", "video-classification", "brain-encoding",
               "fmri--denoising-and-classifying-participants", "signals-from-silent-video", "video-to-video-synthesis", "run"]
#: what the wheel must carry from bench/results (what the two sections read)
PACKAGED = ["classify.json", "vae.json", "fmri_classify.json", "vid2vid.json", "vid2vid/strip.png", "vid2vid/side_by_side.gif", *(f"vae/{p.name}" for p in sorted((ROOT / "bench" / "results" / "vae").glob("*")))]


def _run(args, **kwargs) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _sections(page: str) -> dict[str, str]:
    """Each h2 id with the page up to the next h2."""
    heads = list(re.finditer(r'<h2 id="([^"]+)">', page))
    ends = [h.start() for h in heads[1:]] + [len(page)]
    return {h.group(1): page[h.end():end] for h, end in zip(heads, ends, strict=True)}


def test_demo_from_an_installed_wheel_outside_the_checkout_has_every_section(tmp_path):
    # build from a copy of what the wheel is made of, so no build/ or egg-info lands in the checkout
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    shutil.copytree(ROOT / "bench" / "results", source / "bench" / "results", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", wheels, source], cwd=tmp_path)
    (wheel,) = wheels.glob("framegram-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"framegram/bench_results/{p}" for p in PACKAGED} <= names
        assert archive.read("framegram/bench_results/classify.json") == (ROOT / "bench/results/classify.json").read_bytes()

    # a fresh environment: framegram from the wheel, its dependencies seen through the project's
    # site-packages (appended by a .pth; the editable install's own .pth there is not processed)
    env = tmp_path / "env"
    venv.create(env, with_pip=False, symlinks=os.name != "nt")
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel])
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip())
    (site / "framegram-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    installed = Path(_run([python, "-c", "import framegram; print(framegram.__file__)"], cwd=work, env=clean).strip())
    assert installed.resolve().is_relative_to(env.resolve()), installed

    out = work / "demo"
    framegram = env / ("Scripts/framegram.exe" if os.name == "nt" else "bin/framegram")
    _run([framegram, "demo", "--out", out, "--quiet"], cwd=work, env=clean)
    page = (out / "report.html").read_text()
    sections = _sections(page)
    assert list(sections) == SECTION_IDS
    assert len(SECTIONS) + 1 == len(SECTION_IDS)  # every registered section, and the run time
    classification, signals = sections["video-classification"], sections["signals-from-silent-video"]
    assert "No benchmark result" not in page
    models = {r["model"] for r in json.loads((ROOT / "bench/results/classify.json").read_text())["records"]}
    assert all(m in classification for m in models) and classification.count("<img") == 2
    assert "fMRI: held-out mean r" in signals and "<audio" in signals and "not found" not in signals
    fmri = sections["fmri--denoising-and-classifying-participants"]
    assert "scrubbing.5+gsr" in fmri and "Motion-only control" in fmri
    synthesis = sections["video-to-video-synthesis"]
    assert "per-frame" in synthesis and "image/gif" in synthesis and synthesis.count("<img") == 2


def test_the_default_results_are_a_checkouts_else_the_packaged_ones(tmp_path):
    assert default_results_dir(tmp_path) == packaged_results_dir()
    assert packaged_results_dir().parent == Path(framegram.__file__).parent
    (tmp_path / "bench" / "results").mkdir(parents=True)
    assert default_results_dir(tmp_path) == tmp_path / "bench" / "results"


def test_the_sections_read_the_results_folder_they_are_given_and_say_what_is_missing(tmp_path):
    from framegram.connectome.report import connectome_demo_section
    from framegram.report.sections import DemoContext
    from framegram.vae.report import vae_demo_section
    from framegram.vid2vid.report import vid2vid_demo_section
    from framegram.video_models.report import classification_demo_section

    ctx = DemoContext(tmp_path, None, [], {}, {}, results=tmp_path / "nothing-here")
    for builder, command in ((classification_demo_section, "bench/classify.py"), (vae_demo_section, "bench/vae.py"),
                             (connectome_demo_section, "bench/fmri_classify.py"),
                             (vid2vid_demo_section, "bench/vid2vid.py")):
        body = builder(ctx).body
        assert body.count("<p>") == 1 and str(tmp_path / "nothing-here") in body and command in body
