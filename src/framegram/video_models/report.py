"""The classification section of the demo report: the model families compared on the generated
benchmarks (`bench/results/classify.json`, written by `bench/classify.py`) and the confusion matrix
of the best model on the motion benchmark.

Training every family takes about 45-55 minutes on 2 CPU cores (the sum of the table's training
seconds), too long for `make demo`, so the section shows the benchmark's recorded result and names
the command that reproduces it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from framegram.report.html import Section, figure_img, heading, paragraph, table
from framegram.report.results import default_results_dir
from framegram.report.sections import DemoContext

#: the benchmark result's file name in a results folder (framegram.report.results)
RESULT = "classify.json"


def classification_section(result_path: Path | None = None) -> Section:
    """The section for `result_path` (default: classify.json in `default_results_dir()`); without
    the file, one line saying so and how to produce it."""
    if result_path is None:
        result_path = default_results_dir() / RESULT
    if not result_path.is_file():
        return Section("Video classification", [paragraph(
            f"No benchmark result at {result_path}: run `.venv/bin/python bench/classify.py` to train and compare "
            "every model family on the generated motion and appearance benchmarks.")], order=50)
    result = json.loads(result_path.read_text())
    records = result["records"]
    by_model: dict[str, dict[str, dict]] = {}
    for r in records:
        by_model.setdefault(r["model"], {})[r["benchmark"]] = r
    rows = []
    for model, per in sorted(by_model.items()):
        any_rec = next(iter(per.values()))
        acc = lambda b: f"{per[b]['accuracy']:.3f}" if b in per else "-"  # noqa: E731
        start = any_rec.get("init_from")  # a row fine-tuned from another row's trained run
        rows.append([f"{model} (from {start})" if start else model, acc("motion"), acc("appearance"), f"{any_rec['parameters'] / 1e6:.2f}",
                     f"{any_rec['gmacs']:.3f}", f"{sum(r['train_seconds'] for r in per.values()):.0f}",
                     f"{np.mean([r['clips_per_s'] for r in per.values()]):.0f}"])
    parts = [
        paragraph(
            f"Every model family trained and tested on two generated 8-class benchmarks at {result['clip_len']} "
            f"frames of {result['size'][0]}x{result['size'][1]} ({result['test_clips']} test clips averaged per "
            "video; chance 0.125). Motion: an object cut from real footage moves left/right/up/down, turns or "
            "approaches/recedes, with position, angle and size uniform at every frame, so no single frame tells "
            "the class. Appearance: each class is a different real video. Source: bench/results/classify.json "
            "(`bench/classify.py`)."
        ),
        table(["model", "motion accuracy", "appearance accuracy", "parameters (M)", "GMACs / clip",
               "training s (both)", "clips/s"], rows),
    ]
    parts.append(heading("Learning curves (accuracy on one clip per test video after each epoch)"))
    parts.append(figure_img(learning_curves_figure(records), alt="validation accuracy per epoch of every model"))
    motion = [r for r in records if r["benchmark"] == "motion"]
    if motion:
        best = max(motion, key=lambda r: r["accuracy"])
        parts.append(heading(f"Confusion matrix: {best['model']} on motion (accuracy {best['accuracy']:.3f})"))
        parts.append(figure_img(_confusion_figure(np.array(best["confusion"]), best["classes"]),
                                alt=f"confusion matrix of {best['model']}"))
    return Section("Video classification", parts, order=50)


def learning_curves_figure(records: list[dict]):
    """One panel per benchmark: each model's validation accuracy against the epoch, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = sorted({r["benchmark"] for r in records}, key=lambda b: (b != "motion", b))
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(6 * len(benchmarks), 4.5), squeeze=False)
    for ax, benchmark in zip(axes[0], benchmarks, strict=True):
        for r in sorted((r for r in records if r["benchmark"] == benchmark), key=lambda r: -r["accuracy"]):
            epochs = [h["epoch"] for h in r["curve"]]
            ax.plot(epochs, [h["val_acc"] for h in r["curve"]], marker=".", label=f"{r['model']} ({r['accuracy']:.2f})")
        ax.axhline(1 / len(records[0]["classes"]), color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.set_title(benchmark)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _confusion_figure(confusion: np.ndarray, classes: list[str]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), n in np.ndenumerate(confusion):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                    color="white" if n > confusion.max() / 2 else "black")
    fig.tight_layout()
    return fig


def classification_demo_section(ctx: DemoContext) -> Section:
    return classification_section(ctx.results / RESULT)
