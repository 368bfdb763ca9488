"""The brain section of an HTML report, built from a fit's output folder (`framegram brain report`).

Per participant: glass-brain and slice plots of the held-out r map (nilearn), the r histogram inside
the mask beside the controls', and the delay profile; a table per participant with mean r, the
significant voxels, the profile's peak, the controls and the published protocol's MSEs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.brain.outputs import read_results, subject_dir
from framegram.report.html import Report, Section, figure_img, paragraph, table


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def brain_section(out: str | Path, max_subjects_plotted: int = 4, order: int = 60) -> Section:
    """The section for the fit in `out` (results.json, sub-XX/ maps)."""
    out = Path(out)
    results = read_results(out)
    subjects = results["subjects"]
    parts = [
        paragraph(
            "Each participant's BOLD is predicted from the film's framegram: frames averaged within each "
            "TR, reduced to principal components, passed through the SPM haemodynamic response started "
            "late by the participant's own delay (chosen on the training volumes; or FIR delays 0-10 s "
            "with --basis fir), ridge per voxel (alpha chosen per voxel by cross-validation "
            "over contiguous blocks of time), trained on the first part of the run and scored on the "
            "held-out rest (Pearson r per voxel; significance: circular-shift null, FDR 0.05). Controls: "
            "constant features, circularly shifted features, the previous volume. The published protocol "
            "(min-max scaled raw BOLD, one frame 5 s before each scan, ridge alpha 1000 on the change "
            "between volumes, 70/30 split, MSE over all voxels) is reported beside its own controls."
        )
    ]
    rows = []
    for s in subjects:
        c = s.get("controls_mean_r_significant", {})
        p = s.get("published", {})
        rows.append([
            f"sub-{s['subject']}", s["voxels"], s["significant"], _fmt(s["mean_r_significant"]), _fmt(s["top1pct_r"]),
            _fmt(s["profile_peak_s"]), _fmt(s.get("hrf_delay_s")),
            _fmt(c.get("shifted features")), _fmt(c.get("previous volume")),
            _fmt(p.get("mse_model")), _fmt(p.get("mse_persistence")), _fmt(p.get("mse_constant")),
        ])
    parts.append(table(
        ["participant", "voxels", "significant", "mean r (sig.)", "mean r (top 1 %)", "response peak s", "HRF delay s",
         "shifted r (sig.)", "prev. volume r (sig.)", "published MSE", "persistence MSE", "constant MSE"],
        rows,
    ))
    for s in subjects[:max_subjects_plotted]:
        parts.append(f"<h3>sub-{s['subject']}</h3>")
        parts.append(_subject_figures(out, s))
    if len(subjects) > max_subjects_plotted:
        parts.append(paragraph(f"Maps of the other {len(subjects) - max_subjects_plotted} participants: {out}/sub-XX/r.nii.gz"))
    return Section("Brain encoding", "\n".join(parts), order=order)


def _subject_figures(out: Path, summary: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    folder = subject_dir(out, summary["subject"])
    r_img = str(folder / "r.nii.gz")
    fig = plt.figure(figsize=(12, 3.2))
    ax1 = fig.add_axes([0.0, 0.0, 0.5, 1.0])
    ax2 = fig.add_axes([0.5, 0.0, 0.5, 1.0])
    plotting.plot_glass_brain(r_img, threshold=0.1, colorbar=True, plot_abs=False, axes=ax1, title="held-out r (glass brain)")
    plotting.plot_stat_map(r_img, bg_img=str(folder / "mask.nii.gz"), threshold=0.1, display_mode="z", cut_coords=4,
                           axes=ax2, title="held-out r (slices)", draw_cross=False, annotate=False)
    maps = figure_img(fig, alt=f"r maps of sub-{summary['subject']}")

    scores = np.load(folder / "scores.npz")
    fig, (h, d) = plt.subplots(1, 2, figsize=(12, 3.2))
    bins = np.linspace(-0.5, 1.0, 61)
    h.hist(scores["r"], bins=bins, alpha=0.7, label="framegram ridge")
    for key, label in (("control_shifted features", "shifted features"), ("control_previous volume", "previous volume"),
                       ("published_r_change", "published (change)")):
        if key in scores:
            h.hist(scores[key], bins=bins, histtype="step", label=label)
    h.set_xlabel("held-out r per voxel (mask)")
    h.set_ylabel("voxels")
    h.set_yscale("log")
    h.legend(fontsize=8)
    if summary.get("profile_times_s"):  # absent in fits written before delay profiles had times
        d.plot(summary["profile_times_s"], summary["delay_profile"], marker="o")
        d.axvline(summary["profile_peak_s"], color="gray", linestyle=":")
        d.set_xlabel("response peak after the stimulus (s)")
        d.set_ylabel(summary["profile_kind"])
        d.set_title("delay profile")
    fig.tight_layout()
    return maps + figure_img(fig, alt=f"r histogram and delay profile of sub-{summary['subject']}")


def write_brain_report(out: str | Path, path: str | Path | None = None) -> Path:
    """A standalone report of the fit in `out` (default: out/report.html)."""
    out = Path(out)
    report = Report("framegram: brain encoding")
    report.add(brain_section(out))
    return report.write(path or out / "report.html")


def _register_demo_section() -> None:
    """Add the brain section to `make demo`: a small generated dataset (2 participants, small grid)
    fitted once into <demo out>/brain (kept, so a later demo reuses it)."""
    from framegram.report.sections import DemoContext, demo_section

    @demo_section
    def brain_demo_section(ctx: DemoContext) -> Section:
        from framegram.brain.pipeline import fit_dataset
        from framegram.synth.bids import generate_dataset

        root = ctx.out_dir / "brain" / "bids"
        fit_out = ctx.out_dir / "brain" / "fit"
        generate_dataset(root, subjects=2, small=True, progress=ctx.show_progress)
        if not (fit_out / "results.json").is_file():
            fit_dataset(root, root / "stimuli" / "film.mp4", fit_out, show_progress=ctx.show_progress)
        return brain_section(fit_out)


_register_demo_section()
