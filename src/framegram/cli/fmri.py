"""`framegram fmri synth | denoise | features | classify`: noise-aware denoising of fMRIPrep outputs and
the classification of participants from connectivity and topological features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import fail

fmri_app = typer.Typer(no_args_is_help=True, help="Denoise fMRIPrep outputs by named strategies, measure them (QC-FC), "
                                                  "and classify participants from connectivity and topology.")

StrategiesOption = Annotated[list[str] | None, typer.Option(
    "--strategy", "-s", help="Denoising strategy (repeatable): none, simple, simple+gsr, scrubbing.5, scrubbing.5+gsr, "
                             "scrubbing.2, scrubbing.2+gsr, compcor, compcor6. Default: all of them.")]
ParticipantsOption = Annotated[Path | None, typer.Option("--participants", help="BIDS participants.tsv (default: "
                                                         "one found beside or above the folder).")]
LabelOption = Annotated[str, typer.Option("--label", help="participants.tsv column with the two classes.")]
SiteOption = Annotated[str, typer.Option("--site", help="participants.tsv column naming the site (leave-site-out splits).")]
PositiveOption = Annotated[str | None, typer.Option("--positive", help="The class counted as positive (default: the second in sorted order).")]


def _strategies(given: list[str] | None) -> list[str]:
    from framegram.connectome.strategies import STRATEGIES

    names = given or list(STRATEGIES)
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise fail(f"unknown strategy {unknown[0]!r}; known: {', '.join(STRATEGIES)}")
    return names


def _denoised_strategies(denoised: Path, given: list[str] | None) -> list[str]:
    """The strategies asked for, else those `denoise` wrote into the folder; one-line errors otherwise."""
    if not denoised.is_dir():
        raise fail(f"{denoised}: no such folder (the output of `framegram fmri denoise`)")
    if given:
        return _strategies(given)
    found = [p.name for p in sorted(denoised.iterdir()) if (p / "excluded.tsv").is_file()]
    if not found:
        raise fail(f"{denoised}: no denoised strategies here (run `framegram fmri denoise ... --out {denoised}` first)")
    return _strategies(found)


def _load_truth(truth: Path, parcels: int):
    import numpy as np

    try:
        difference = np.load(truth)
    except (OSError, ValueError):
        raise fail(f"{truth}: not a readable .npy array") from None
    if difference.shape != (parcels, parcels):
        raise fail(f"{truth}: shape {difference.shape}, but the series have {parcels} parcels")
    return difference


def _find_participants(start: Path, given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise fail(f"{given}: no such participants table")
        return given
    for folder in [start, *start.resolve().parents][:4]:
        if (folder / "participants.tsv").is_file():
            return folder / "participants.tsv"
    return None


def _recorded(denoised: Path) -> dict:
    """What `denoise` recorded of its inputs (denoise.json: derivatives, atlas, participants), or {}."""
    try:
        return json.loads((denoised / "denoise.json").read_text())
    except (OSError, ValueError):
        return {}


@fmri_app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Folder for the generated dataset.")],
    variant: Annotated[str, typer.Option(help="'network': groups differ in named networks; 'motion': in head motion only.")] = "network",
    sites: Annotated[int, typer.Option(help="Number of sites.")] = 5,
    per_site: Annotated[int, typer.Option("--per-site", help="Participants per site (half patients).")] = 32,
    small: Annotated[bool, typer.Option("--small", help="14x16x14 grid, for a quick look.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Generate a multi-site fMRIPrep derivatives dataset with a known answer (truth/ kept apart)."""
    from framegram.datasets.connectome_sites import VARIANTS, generate_connectome_sites

    if variant not in VARIANTS:
        raise fail(f"--variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    generate_connectome_sites(out, variant, sites, per_site, small=small, seed=seed, show_progress=not quiet)
    typer.echo(f"{sites * per_site} participants -> {out} (fMRIPrep outputs in {out / 'derivatives' / 'fmriprep'}, "
               f"atlas in {out / 'atlas'}, ground truth in {out / 'truth'})")


@fmri_app.command("denoise")
def denoise(
    derivatives: Annotated[Path, typer.Argument(help="fMRIPrep output folder (sub-*/func/*_desc-preproc_bold.nii.gz).")],
    atlas: Annotated[Path, typer.Option("--atlas", help="Labels image (dseg) in the runs' space.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (one subfolder per strategy).")],
    strategy: StrategiesOption = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="The atlas's labels table (index, name[, network]).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only runs of this task.")] = None,
    space: Annotated[str | None, typer.Option("--space", help="Template space of the runs (needed when several).")] = None,
    participants: ParticipantsOption = None,
    label: LabelOption = "group",
    site: SiteOption = "site",
    positive: PositiveOption = None,
    truth: Annotated[Path | None, typer.Option("--truth", help="True group difference [P, P] (.npy; a generated dataset's truth/group_difference.npy).")] = None,
    min_volumes: Annotated[int, typer.Option("--min-volumes", help="Fewest volumes a run may keep after scrubbing.")] = 60,
    save_bold: Annotated[bool, typer.Option("--save-bold", help="Also write each run's denoised 4-D image (NIfTI) per strategy.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Parcel time series per strategy (TSV + JSON), and the strategies' QC-FC benchmark (quality.tsv)."""
    import numpy as np

    from framegram.connectome.atlas import load_atlas
    from framegram.connectome.denoise import denoise_runs
    from framegram.connectome.pipeline import measure_quality
    from framegram.connectome.runs import find_preprocessed_runs
    from framegram.io.atomic import atomic_write_bytes

    names = _strategies(strategy)
    if min_volumes < 10:
        raise fail(f"--min-volumes must be at least 10, got {min_volumes}")
    runs = find_preprocessed_runs(derivatives, task, space)
    parcellation = load_atlas(atlas, labels)
    summary = denoise_runs(runs, parcellation, names, out, min_volumes, show_progress=not quiet, save_bold=save_bold)
    for exc in summary.failed:
        typer.echo(f"framegram: error: {exc}", err=True)
    for name, who in summary.excluded.items():
        for subject, why in who:
            typer.echo(f"framegram: warning: sub-{subject} left out of {name}: {why.split(' (')[0]}", err=True)
    if summary.failed:
        raise typer.Exit(2)
    table = _find_participants(derivatives, participants)
    atomic_write_bytes(out / "denoise.json", (json.dumps({
        "derivatives": str(derivatives.resolve()), "atlas": str(atlas.resolve()),
        "participants": str(table.resolve()) if table else None, "strategies": names}, indent=1) + "\n").encode())
    difference = None if truth is None else _load_truth(truth, len(parcellation.indices))
    quality = measure_quality(out, names, parcellation, table, label, site, positive, difference)
    typer.echo(f"{summary.written} series written, {summary.skipped} already done -> {out}")
    if quality:
        typer.echo("strategy          QC-FC share  median |r|  distance dep.  tDOF lost" + ("  truth r" if difference is not None else ""))
        for name, q in quality.items():
            extra = f"  {q.truth_recovery_r:7.3f}" if q.truth_recovery_r is not None else ""
            typer.echo(f"{name:17s} {q.qcfc_share:11.3f} {q.qcfc_median_abs_r:11.3f} {q.distance_dependence:14.3f} "
                       f"{q.tdof_lost:10.1f}{extra}")


@fmri_app.command("features")
def features(
    denoised: Annotated[Path, typer.Argument(help="`framegram fmri denoise`'s output folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the feature tables.")],
    strategy: StrategiesOption = None,
    kind: Annotated[str, typer.Option("--kind", help="Connectivity: correlation, 'partial correlation' or tangent.")] = "tangent",
) -> None:
    """Connectivity and topological features per participant (TSV, one row each; tangent fitted on all of them)."""
    import numpy as np

    from framegram.connectome.denoise import load_series
    from framegram.connectome.features import CONNECTIVITY_KINDS, ConnectivityFeatures, TopologicalFeatures
    from framegram.io.atomic import atomic_write_bytes

    if kind not in CONNECTIVITY_KINDS:
        raise fail(f"--kind must be one of {', '.join(CONNECTIVITY_KINDS)}, not {kind!r}")
    for name in _denoised_strategies(denoised, strategy):
        series = load_series(denoised, name)
        edges = ConnectivityFeatures(kind).fit(series.series).transform(series.series)
        p = len(series.parcel_names)
        # nilearn's vectorised order: the lower triangle row by row, (1, 0), (2, 0), (2, 1), (3, 0), ...
        pairs = [f"{series.parcel_names[i]}|{series.parcel_names[j]}" for i, j in zip(*np.tril_indices(p, -1))]
        topo = TopologicalFeatures().fit(series.series)
        tda = topo.transform(series.series)
        tda_names = ([f"betti0_{t:.3f}" for t in topo.grid_] + [f"betti1_{t:.3f}" for t in topo.grid_]
                     + [f"h1_image_{k}" for k in range(topo._image_size())]
                     + ["h0_total_persistence", "h0_max_persistence", "h1_total_persistence", "h1_max_persistence", "h1_loops"])
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, columns, rows in ((f"connectivity-{kind.replace(' ', '')}.tsv", pairs, edges), ("tda.tsv", tda_names, tda)):
            lines = ["participant_id\t" + "\t".join(columns)]
            lines += [f"sub-{s}\t" + "\t".join(f"{v:.6g}" for v in row) for s, row in zip(series.subjects, rows)]
            atomic_write_bytes(folder / file, ("\n".join(lines) + "\n").encode())
        typer.echo(f"{name}: {len(series.subjects)} participants, {edges.shape[1]} edges, {tda.shape[1]} topological features -> {folder}")


@fmri_app.command("classify")
def classify(
    denoised: Annotated[Path, typer.Argument(help="`framegram fmri denoise`'s output folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for classification.json, the ROC curves and report.html.")],
    strategy: StrategiesOption = None,
    participants: ParticipantsOption = None,
    label: LabelOption = "group",
    site: SiteOption = "site",
    positive: PositiveOption = None,
    feature_set: Annotated[list[str] | None, typer.Option("--features", help="connectivity, tda or both (repeatable; default all).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="Connectivity: correlation, 'partial correlation' or tangent.")] = "tangent",
    permutations: Annotated[int, typer.Option("--permutations", help="Label permutations for the p-value.")] = 200,
    motion_regression: Annotated[bool, typer.Option("--motion-regression/--no-motion-regression",
                                                    help="Regress head-motion summaries out of the features inside each fold.")] = True,
    truth: Annotated[Path | None, typer.Option("--truth", help="True group difference (.npy), drawn beside the estimated one.")] = None,
) -> None:
    """Leave-site-out nested classification per strategy and feature set, the motion-only control, and an HTML report."""
    import numpy as np

    from framegram.connectome import report
    from framegram.connectome.classify import p_text
    from framegram.connectome.denoise import common_subjects, load_series
    from framegram.connectome.features import CONNECTIVITY_KINDS, FEATURE_SETS
    from framegram.connectome.pipeline import classification_json, classify_strategy, subject_table
    from framegram.connectome.quality import StrategyQuality
    from framegram.io.atomic import atomic_write_bytes

    sets = tuple(feature_set or FEATURE_SETS)
    bad = [s for s in sets if s not in FEATURE_SETS]
    if bad:
        raise fail(f"--features must be among {', '.join(FEATURE_SETS)}, not {bad[0]!r}")
    if kind not in CONNECTIVITY_KINDS:
        raise fail(f"--kind must be one of {', '.join(CONNECTIVITY_KINDS)}, not {kind!r}")
    if permutations < 0:
        raise fail(f"--permutations must be 0 or more, got {permutations}")
    recorded = _recorded(denoised)
    table = _find_participants(denoised, participants or (Path(recorded["participants"]) if recorded.get("participants") else None))
    if table is None:
        raise fail(f"no participants.tsv in or above {denoised}: pass --participants")
    names = _denoised_strategies(denoised, strategy)
    subjects = common_subjects(denoised, names)
    every = set().union(*(load_series(denoised, n).subjects for n in names))
    if len(every) > len(subjects):
        typer.echo(f"framegram: warning: {len(every) - len(subjects)} participants left out by some strategy are left out "
                   f"of all, so that strategies are compared on the same {len(subjects)} people", err=True)
    results, control = {}, None
    for name in names:
        results[name], c = classify_strategy(denoised, name, table, sets, label, site, positive, kind, permutations,
                                             motion_regression, subjects)
        control = control or c  # the same participants in every strategy: one control
        typer.echo(f"{name:17s} " + "  ".join(f"{fs} AUC {r.auc:.3f} (p {p_text(r.permutation_p)})"
                                             for fs, r in results[name].items()))
    if control is not None:
        typer.echo(f"{'motion only':17s} AUC {control.auc:.3f} (p {p_text(control.permutation_p)})")
    out.mkdir(parents=True, exist_ok=True)
    data = classification_json(results, control)
    data["settings"] = {"kind": kind, "permutations": permutations, "motion_regression": motion_regression,
                        "label": label, "site": site, "participants": str(table)}
    atomic_write_bytes(out / "classification.json", (json.dumps(data, indent=1) + "\n").encode())
    sections = []
    quality_file = denoised / "quality.json"
    first = load_series(denoised, names[0], subjects)
    classes = subject_table(first, table, label, site, positive).classes
    if quality_file.is_file():
        from framegram.connectome.atlas import load_atlas

        quality = {k: StrategyQuality(**v) for k, v in json.loads(quality_file.read_text()).items()}
        atlas_path = recorded.get("atlas")
        if quality and atlas_path and Path(atlas_path).is_file():
            shown = {k: load_series(denoised, k, subjects) for k in quality if (denoised / k).is_dir()}
            sections.append(report.quality_section(quality, shown, load_atlas(atlas_path).distances()))
    difference = None if truth is None else _load_truth(truth, len(first.parcel_names))
    best_strategy = max(names, key=lambda n: max(r.auc for r in results[n].values()))
    chosen = load_series(denoised, best_strategy, subjects)
    chosen_labels = np.array(subject_table(chosen, table, label, site, positive).labels)
    sections.append(report.connectome_section(chosen, chosen_labels, classes, difference))
    sections.append(report.persistence_section(chosen, chosen_labels, classes))
    sections.append(report.classification_section(results, control, motion_regression))
    page = report.write_report(out / "report.html", sections)
    typer.echo(f"-> {out / 'classification.json'}, {page}")
