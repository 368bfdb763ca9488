"""Build hook only; the project's configuration is pyproject.toml.

setuptools has no `force-include` (hatchling's way of placing files from outside the package
into the wheel) and its `data-files` install beside the prefix, not inside the package. So
`build_py` copies the benchmark results the demo report reads (bench/results/classify.json,
vae.json and the example files in vae/, fmri_classify.json, vid2vid.json and its examples in vid2vid/) into the built package as `framegram/bench_results/`,
from bench/results at build time: they are not duplicated in git. An installed `framegram demo`
run outside a checkout reads them there (framegram.report.results).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

#: what the demo reads, relative to bench/results (globs)
DEMO_RESULTS = ["classify.json", "vae.json", "vae/*", "fmri_classify.json", "vid2vid.json", "vid2vid/*"]
SOURCE = Path("bench") / "results"
TARGET = ("framegram", "bench_results")


class BuildPyWithBenchResults(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install runs from the checkout, which has bench/results
            return
        target = Path(self.build_lib, *TARGET)
        copied = 0
        for pattern in DEMO_RESULTS:
            for source in sorted(SOURCE.glob(pattern)):
                if source.is_file():
                    destination = target / source.relative_to(SOURCE)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, destination)
                    copied += 1
        if not copied:
            self.warn(f"no benchmark results in {SOURCE}: the installed demo report will say so in its sections")


setup(cmdclass={"build_py": BuildPyWithBenchResults})
