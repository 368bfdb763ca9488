"""The HTML report of a denoising-and-classification run: the denoising benchmark (QC-FC, distance
dependence, tDOF), connectomes, persistence diagrams and ROC curves (matplotlib, inlined)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.connectome.classify import ClassificationResult, p_text
from framegram.connectome.denoise import SeriesSet
from framegram.connectome.features import persistence_diagrams
from framegram.connectome.pipeline import mean_fd
from framegram.connectome.quality import StrategyQuality, connectivity_edges, group_difference, qcfc
from framegram.report import Report, Section, figure_img, paragraph, table


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def quality_section(quality: dict[str, StrategyQuality], series: dict[str, SeriesSet], distances: np.ndarray) -> Section:
    plt = _plt()
    rows = [[name, q.participants, q.qcfc_share, q.qcfc_median_abs_r, q.distance_dependence, q.tdof_lost,
             "n/a" if q.truth_recovery_r is None else q.truth_recovery_r] for name, q in quality.items()]
    body = [paragraph("QC-FC: share of edges whose connectivity correlates with mean framewise displacement "
                      "across participants (p < 0.05, uncorrected) and the median |r|; distance dependence: "
                      "Spearman rho of QC-FC r with the distance between parcels; tDOF lost: confound "
                      "regressors plus censored volumes. Lower is better for all three."),
            table(["strategy", "participants", "QC-FC share", "median |r|", "distance dependence", "tDOF lost",
                   "truth recovery r"], rows)]
    names = list(quality)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].barh(names, [quality[n].qcfc_share for n in names], color="#4a7bb7")
    axes[0].set_xlabel("QC-FC share of edges (p < 0.05)")
    axes[1].barh(names, [abs(quality[n].distance_dependence) for n in names], color="#d08c3c")
    axes[1].set_xlabel("|distance dependence|")
    axes[2].barh(names, [quality[n].tdof_lost for n in names], color="#6a9f58")
    axes[2].set_xlabel("tDOF lost (volumes)")
    for ax in axes[1:]:
        ax.set_yticklabels([])
    for ax in axes:
        ax.invert_yaxis()
    fig.tight_layout()
    body.append(figure_img(fig, "QC-FC, distance dependence and tDOF lost per strategy"))
    iu = np.triu_indices(distances.shape[0], 1)
    shown = [n for n in names if n in series][:6]
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.8), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], shown):
        s = series[name]
        r, _ = qcfc(connectivity_edges(s.series), mean_fd(s))
        ax.scatter(distances[iu], r, s=1, alpha=0.25, color="#333")
        ax.axhline(0, color="#c33", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("distance (mm)")
    axes[0][0].annotate("QC-FC r without covariates", (0.02, 0.95), xycoords="axes fraction", fontsize=7)
    axes[0][0].set_ylabel("QC-FC r")
    fig.tight_layout()
    body.append(figure_img(fig, "QC-FC against distance"))
    return Section("Denoising", body, order=10)


def connectome_section(series: SeriesSet, labels: np.ndarray, classes: tuple[str, str],
                       true_difference: np.ndarray | None = None) -> Section:
    plt = _plt()
    edges = connectivity_edges(series.series)
    p = series.series[0].shape[1]
    iu = np.triu_indices(p, 1)

    def square(v):
        m = np.zeros((p, p))
        m[iu] = v
        return m + m.T

    panels = [(f"mean r, {classes[0]}", square(edges[labels == 0].mean(0)), 1.0),
              (f"mean r, {classes[1]}", square(edges[labels == 1].mean(0)), 1.0)]
    diff = group_difference(edges, labels)
    panels.append((f"{classes[1]} - {classes[0]} (Fisher z)", square(diff), max(np.abs(diff).max(), 1e-6)))
    if true_difference is not None:
        panels.append(("true difference", true_difference, max(np.abs(true_difference).max(), 1e-6)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2))
    for ax, (title, m, lim) in zip(axes, panels):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return Section("Connectomes", [paragraph(f"Strategy {series.strategy}: parcels in atlas order."),
                                   figure_img(fig, "connectomes")], order=20)


def persistence_section(series: SeriesSet, labels: np.ndarray, classes: tuple[str, str]) -> Section:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, cls in zip(axes, (0, 1)):
        who = int(np.flatnonzero(labels == cls)[0])
        h0, h1 = persistence_diagrams(series.series[who])
        ax.scatter(h0[:, 0], h0[:, 1], s=8, label="H0 (components)")
        ax.scatter(h1[:, 0], h1[:, 1], s=8, label="H1 (loops)")
        top = max(h0[:, 1].max(initial=0), h1[:, 1].max(initial=0), 0.1) * 1.05
        ax.plot([0, top], [0, top], color="#999", lw=0.8)
        ax.set_title(f"sub-{series.subjects[who]} ({classes[cls]})", fontsize=9)
        ax.set_xlabel("birth: sqrt(2 (1 - r))")
        ax.set_ylabel("death")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return Section("Persistence", [paragraph("Vietoris-Rips persistence of each connectome as a weighted graph "
                                             "(ripser); the topological features are these diagrams' Betti curves, "
                                             "a persistence image of H1 and summaries."),
                                   figure_img(fig, "persistence diagrams")], order=30)


def classification_section(results: dict[str, dict[str, ClassificationResult]], control: ClassificationResult | None,
                           motion_regression: bool) -> Section:
    from sklearn.metrics import roc_curve

    plt = _plt()
    rows = [[f"{fs}/{strategy}", r.participants, r.accuracy, r.auc, f"{r.auc_ci[0]:.2f}-{r.auc_ci[1]:.2f}",
             p_text(r.permutation_p)] for strategy, by_set in results.items() for fs, r in by_set.items()]
    if control is not None:
        rows.append(["motion only (control)", control.participants, control.accuracy, control.auc,
                     f"{control.auc_ci[0]:.2f}-{control.auc_ci[1]:.2f}", p_text(control.permutation_p)])
    body = [paragraph("Leave-one-site-out: features and the ridge penalty fitted on the other sites only; AUC over "
                      "the pooled held-out decision values with a bootstrap 95 % interval; p from refitting on labels "
                      "shuffled within sites. The connectomes below are drawn for the strategy with the best held-out AUC: a choice made "
                      "after seeing every result, so that AUC is optimistic." + (" Head-motion summaries are regressed out of the features inside "
                                                  "each fold (not for the raw series)." if motion_regression else "")),
            table(["features/denoising", "participants", "accuracy", "AUC", "AUC 95 % CI", "permutation p"], rows)]
    strategies = list(results)
    fig, axes = plt.subplots(1, len(strategies), figsize=(3.3 * len(strategies), 3.3), squeeze=False)
    for ax, strategy in zip(axes[0], strategies):
        for fs, r in results[strategy].items():
            fpr, tpr, _ = roc_curve(r.labels, r.scores)
            ax.plot(fpr, tpr, label=f"{fs} {r.auc:.2f}")
        if control is not None:
            fpr, tpr, _ = roc_curve(control.labels, control.scores)
            ax.plot(fpr, tpr, ls="--", color="#777", label=f"motion {control.auc:.2f}")
        ax.plot([0, 1], [0, 1], color="#bbb", lw=0.8)
        ax.set_title(strategy, fontsize=9)
        ax.set_xlabel("false positive rate")
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("true positive rate")
    fig.tight_layout()
    body.append(figure_img(fig, "ROC curves"))
    return Section("Classification", body, order=40)


def write_report(path: str | Path, sections: list[Section], title: str = "framegram fMRI denoising and classification") -> Path:
    report = Report(title)
    for s in sections:
        report.add(s)
    return report.write(path)


DEMO_ORDER = 60  # after brain encoding, before the signal models (the demo keeps the listed order among equals)


def benchmark_section(results: Path | None = None) -> Section:
    """The demo report's section from bench/results/fmri_classify.json (`bench/fmri_classify.py`);
    without it, one line saying so and how to produce it."""
    import json

    from framegram.report import heading
    from framegram.report.results import default_results_dir

    path = (results or default_results_dir()) / "fmri_classify.json"
    title = "fMRI: denoising and classifying participants"
    if not path.is_file():
        return Section(title, paragraph(f"No benchmark result at {path}: run `.venv/bin/python bench/fmri_classify.py`."),
                       order=DEMO_ORDER)
    result = json.loads(path.read_text())
    settings = result.get("settings", {})
    parts = [paragraph(
        f"A generated {settings.get('sites', '?')}-site resting-state dataset in fMRIPrep's layout "
        f"({result.get('participants', {}).get('network', '?')} participants, {settings.get('parcels', '?')} parcels; "
        "head motion adds spikes and distance-dependent artefacts; the true connectivity is known). Each denoising "
        "strategy is scored as in the fMRIPrep denoising benchmarks, then participants are classified with one site "
        "held out at a time. Source: bench/results/fmri_classify.json (`bench/fmri_classify.py`).")]
    denoising = result.get("denoising", {})
    if denoising:
        parts.append(heading("Denoising (lower QC-FC, |distance dependence| and tDOF lost are better)"))
        parts.append(table(["strategy", "QC-FC share", "median |r|", "distance dependence", "tDOF lost", "truth recovery r"],
                           [[k, v["qcfc_share"], v["qcfc_median_abs_r"], v["distance_dependence"], v["tdof_lost"],
                             v["truth_recovery_r"] if v["truth_recovery_r"] is not None else "n/a"] for k, v in denoising.items()]))
    for key, name in (("classification", "groups differing in networks"), ("motion_only_variant", "groups differing in head motion only")):
        entries = result.get(key, {})
        if not entries:
            continue
        parts.append(heading(f"Classification, {name} (leave-site-out ROC AUC)"))
        strategies = list(dict.fromkeys(k.split("/", 1)[1] for k in entries))
        sets = list(dict.fromkeys(k.split("/", 1)[0] for k in entries))
        rows = [[s] + [f"{entries[f'{fs}/{s}']['auc']:.2f} (p {p_text(entries[f'{fs}/{s}']['permutation_p'])})" for fs in sets]
                for s in strategies]
        parts.append(table(["denoising"] + sets, rows))
        control = result.get("motion_control" if key == "classification" else "motion_only_variant_control")
        if control:
            parts.append(paragraph(f"Motion-only control on the same participants: AUC {control['auc']:.2f} "
                                   f"(p {p_text(control['permutation_p'])})."))
    return Section(title, parts, order=DEMO_ORDER)


def connectome_demo_section(ctx) -> Section:
    return benchmark_section(ctx.results)
