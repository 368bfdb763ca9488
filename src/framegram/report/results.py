"""Where the demo report finds the recorded benchmark results (`bench/results/*.json`, written by
the scripts in bench/): a folder given (`framegram demo --results DIR`), else the `bench/results`
folder of a checkout when the working directory is one, else the copy an installed wheel ships
as package data (`framegram/bench_results/`, copied from bench/results when the wheel is built).

Sections that read a result take the folder and name what is missing in one line.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the benchmark results folder of a checkout, relative to its root
CHECKOUT_RESULTS = Path("bench") / "results"
#: the results folder inside the installed package
PACKAGED_RESULTS = "bench_results"


def packaged_results_dir() -> Path:
    """The results shipped inside the installed package (the folder may be absent: an editable
    install or a wheel built without bench/results)."""
    return Path(str(resources.files("framegram") / PACKAGED_RESULTS))


def default_results_dir(cwd: str | Path | None = None) -> Path:
    """`bench/results` under `cwd` (default: the working directory) if it is a folder, else the
    packaged results."""
    checkout = Path.cwd() / CHECKOUT_RESULTS if cwd is None else Path(cwd) / CHECKOUT_RESULTS
    return checkout if checkout.is_dir() else packaged_results_dir()
