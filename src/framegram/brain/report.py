"""The brain section of an HTML report, built from a fit's output folder (`framegram brain report`).

Per participant: glass-brain and slice plots of the held-out r map (nilearn), the r histogram inside
the mask beside the controls', and the delay profile; a table per participant with mean r, the
significant voxels, the profile's peak, the controls and the published protocol's MSEs. A fit with
several feature spaces adds their table (each space alone, the voxels each one wins, its unique R²)
and, per participant, a map of the space that explains each significant voxel best.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framegram.brain.errors import FitFolderError
from framegram.brain.outputs import RESULTS, read_results, subject_dir
from framegram.report.html import Html, Report, Section, figure_img, heading, paragraph, table
from framegram.report.sections import DemoContext


#: What the report reads of each participant's entry in results.json (the rest is optional).
SUMMARY_KEYS = ("subject", "voxels", "significant", "mean_r_significant", "top1pct_r", "profile_peak_s")


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _remake(out: Path, subject: str | None = None) -> str:
    """How to remake a fit folder's file: the participant's files by fitting it again (a participant
    without its folder is not done, so a rerun fits it), results.json by any rerun."""
    if subject is None:
        return f"rerun `framegram brain fit` with the same settings and --out {out} to write it again"
    return (f"delete {subject_dir(out, subject)} and rerun `framegram brain fit` with the same settings and "
            f"--out {out} to fit sub-{subject} again")


def _subjects(results, out: Path) -> list[dict]:
    """results.json's participants, each with the keys the table needs (FitFolderError otherwise)."""
    path = out / RESULTS
    subjects = results.get("subjects") if isinstance(results, dict) else None
    if not isinstance(subjects, list) or not all(isinstance(s, dict) for s in subjects):
        raise FitFolderError(path, f"damaged: no list of participants ('subjects'); {_remake(out)}")
    for s in subjects:
        missing = [k for k in SUMMARY_KEYS if k not in s]
        if missing:
            who = f"sub-{s['subject']}" if "subject" in s else "a participant"
            raise FitFolderError(path, f"damaged: {who} lacks {', '.join(repr(k) for k in missing)}; {_remake(out)}")
    return subjects


def _row(s: dict, out: Path) -> list:
    c = s.get("controls_mean_r_significant") or {}
    p = s.get("published") or {}
    try:
        return [
            f"sub-{s['subject']}", s["voxels"], s["significant"], _fmt(s["mean_r_significant"]), _fmt(s["top1pct_r"]),
            _fmt(s["profile_peak_s"]), _fmt(s.get("hrf_delay_s")),
            _fmt(c.get("shifted features")), _fmt(c.get("previous volume")),
            _fmt(p.get("mse_model")), _fmt(p.get("mse_persistence")), _fmt(p.get("mse_constant")),
        ]
    except (AttributeError, TypeError, ValueError):  # a value of the wrong kind (text for a number, ...)
        raise FitFolderError(out / RESULTS, f"damaged: sub-{s['subject']}'s summary holds a value of the wrong kind; "
                                            f"{_remake(out)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_map(path: Path, remake: str):
    """A 3-D map of a fit folder as a float32 nibabel image (read now, so a damaged file fails here)."""
    import zlib

    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    if not path.is_file():
        raise FitFolderError(path, f"no such file; {remake}")
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise FitFolderError(path, f"damaged, not a readable NIfTI image ({_first_line(exc)}); {remake}") from None
    if data.ndim != 3:
        raise FitFolderError(path, f"damaged: a 3-D image was expected, it has shape {data.shape}; {remake}")
    return nib.Nifti1Image(data, img.affine)


def _read_scores(path: Path, n_voxels: int, remake: str) -> dict[str, np.ndarray]:
    """scores.npz: per-voxel arrays, `r` required, each as long as the mask has voxels."""
    from framegram.errors import NPZ_READ_ERRORS

    if not path.is_file():
        raise FitFolderError(path, f"no such file; {remake}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            scores = {k: np.asarray(npz[k]) for k in npz.files}
    except NPZ_READ_ERRORS as exc:
        raise FitFolderError(path, f"damaged, not a readable .npz file ({_first_line(exc)}); {remake}") from None
    if "r" not in scores:
        raise FitFolderError(path, f"damaged: no 'r' array (it holds {', '.join(sorted(scores)) or 'nothing'}); {remake}")
    for name, values in scores.items():
        if name == "spaces":  # the feature spaces' names; their arrays are [spaces, voxels]
            continue
        if values.shape[-1:] != (n_voxels,) or values.ndim > 2:
            raise FitFolderError(path, f"damaged: '{name}' has shape {values.shape}, but mask.nii.gz has {n_voxels} "
                                       f"voxels; {remake}")
    return scores


def brain_section(out: str | Path, max_subjects_plotted: int = 4, order: int = 60) -> Section:
    """The section for the fit in `out` (results.json, sub-XX/ maps). A missing or damaged file is a
    FitFolderError naming it and how to remake it."""
    out = Path(out)
    results = read_results(out)
    subjects = _subjects(results, out)
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
    rows = [_row(s, out) for s in subjects]
    parts.append(table(
        ["participant", "voxels", "significant", "mean r (sig.)", "mean r (top 1 %)", "response peak s", "HRF delay s",
         "shifted r (sig.)", "prev. volume r (sig.)", "published MSE", "persistence MSE", "constant MSE"],
        rows,
    ))
    spaces = [list(s["spaces"]) for s in subjects if isinstance(s.get("spaces"), dict)]
    if spaces:
        parts.append(heading("Feature spaces (banded ridge)"))
        parts.append(paragraph(
            "Each space alone: a ridge on that space only, held-out r averaged over the significant voxels. "
            "Voxels won: significant voxels whose largest share of the banded model's held-out R² is that space's. "
            "Unique R²: the banded model's held-out R² minus that of the banded model without the space "
            "(both floored at zero); shared R²: the space's R² alone minus its unique R² (what other spaces "
            "explain too); both averaged over the significant voxels."))
        names = spaces[0]
        parts.append(table(
            ["participant", *(f"{n}: alone r / won / unique R² / shared R²" for n in names)],
            [[f"sub-{s['subject']}", *(_space_cell(s["spaces"].get(n, {})) for n in names)] for s in subjects if s.get("spaces")],
        ))
    for s in subjects[:max_subjects_plotted]:
        parts.append(heading(f"sub-{s['subject']}"))
        parts.extend(_subject_figures(out, s))
    if len(subjects) > max_subjects_plotted:
        parts.append(paragraph(f"Maps of the other {len(subjects) - max_subjects_plotted} participants: {out}/sub-XX/r.nii.gz"))
    return Section("Brain encoding", parts, order=order)


def _space_cell(space: dict) -> str:
    return (f"{_fmt(space.get('mean_r_alone_significant'))} / {space.get('voxels_best', '-')} / "
            f"{_fmt(space.get('mean_unique_r2_significant'))} / {_fmt(space.get('mean_shared_r2_significant'))}")


def _winning_space_figure(folder: Path, mask_img, scores: dict[str, np.ndarray], remake: str) -> Html:
    """Slices of the significant voxels coloured by the space with the largest share of held-out R²
    (scores.npz's `spaces` and `split_r2`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    from matplotlib.colors import ListedColormap
    from nilearn import plotting

    if "split_r2" not in scores:
        raise FitFolderError(folder / "scores.npz", f"damaged: the feature spaces' shares ('split_r2') are missing; {remake}")
    names = [str(n) for n in scores["spaces"]]
    mask = np.asarray(mask_img.dataobj) > 0
    significant = np.asarray(_read_map(folder / "significant.nii.gz", remake).dataobj)[mask] > 0
    labels = np.zeros(mask.shape, np.float32)
    labels[mask] = np.where(significant, scores["split_r2"].argmax(0) + 1, 0)
    colours = plt.get_cmap("tab10").colors[: len(names)]
    fig = plt.figure(figsize=(12, 3.0))
    plotting.plot_roi(nib.Nifti1Image(labels, mask_img.affine), bg_img=mask_img, display_mode="z", cut_coords=5,
                      cmap=ListedColormap(colours), vmin=0.5, vmax=len(names) + 0.5, figure=fig,
                      title="space with the largest share of held-out R² (significant voxels)", draw_cross=False,
                      annotate=False, colorbar=False)
    fig.legend(handles=[matplotlib.patches.Patch(color=c, label=n) for c, n in zip(colours, names)], loc="lower center",
               ncol=len(names), fontsize=9, frameon=False, labelcolor="white")  # nilearn draws on black
    return figure_img(fig, alt=f"winning feature space per voxel of {folder.name}")


def _subject_figures(out: Path, summary: dict) -> list[Html]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    folder = subject_dir(out, summary["subject"])
    remake = _remake(out, summary["subject"])
    mask_img = _read_map(folder / "mask.nii.gz", remake)
    r_img = _read_map(folder / "r.nii.gz", remake)
    if r_img.shape != mask_img.shape:
        raise FitFolderError(folder / "r.nii.gz", f"damaged: shape {r_img.shape}, but mask.nii.gz has {mask_img.shape}; {remake}")
    scores = _read_scores(folder / "scores.npz", int((np.asarray(mask_img.dataobj) > 0).sum()), remake)
    fig = plt.figure(figsize=(12, 3.2))
    ax1 = fig.add_axes([0.0, 0.0, 0.5, 1.0])
    ax2 = fig.add_axes([0.5, 0.0, 0.5, 1.0])
    plotting.plot_glass_brain(r_img, threshold=0.1, colorbar=True, plot_abs=False, axes=ax1, title="held-out r (glass brain)")
    plotting.plot_stat_map(r_img, bg_img=mask_img, threshold=0.1, display_mode="z", cut_coords=4,
                           axes=ax2, title="held-out r (slices)", draw_cross=False, annotate=False)
    maps = figure_img(fig, alt=f"r maps of sub-{summary['subject']}")

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
    figures = [maps, figure_img(fig, alt=f"r histogram and delay profile of sub-{summary['subject']}")]
    if "spaces" in scores:  # a fit with several feature spaces
        figures.append(_winning_space_figure(folder, mask_img, scores, remake))
    return figures


def write_brain_report(out: str | Path, path: str | Path | None = None) -> Path:
    """A standalone report of the fit in `out` (default: out/report.html)."""
    out = Path(out)
    report = Report("framegram: brain encoding")
    report.add(brain_section(out))
    return report.write(path or out / "report.html")


def brain_demo_section(ctx: DemoContext) -> Section:
    """The brain section of `make demo`: a small generated dataset (2 participants, small grid)
    fitted once into <demo out>/brain (kept, so a later demo reuses it)."""
    from framegram.brain.pipeline import fit_dataset
    from framegram.datasets.bids import generate_dataset

    root = ctx.out_dir / "brain" / "bids"
    fit_out = ctx.out_dir / "brain" / "fit"
    generate_dataset(root, subjects=2, small=True, show_progress=ctx.show_progress)
    if not (fit_out / "results.json").is_file():
        fit_dataset(root, root / "stimuli" / "film.mp4", fit_out, show_progress=ctx.show_progress)
    return brain_section(fit_out)
