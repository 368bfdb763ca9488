"""`framegram brain synth | fit | report`: fMRI encoding models of a film."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.common import fail


brain_app = typer.Typer(no_args_is_help=True, help="Predict fMRI responses to a film from its framegram and other feature spaces (BIDS in, NIfTI maps out).")


@contextmanager
def brain_warnings():
    """The brain pipeline's warnings about the user's data (`DerivativesWarning`) as one line each,
    `framegram: warning: ...`, instead of Python's file:line form; other warnings as usual."""
    from framegram.fmri.errors import DerivativesWarning

    with warnings.catch_warnings():  # restores showwarning on exit
        default = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DerivativesWarning):
                typer.echo(f"framegram: warning: {message}", err=True)
            else:
                default(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


@brain_app.command("synth")
def brain_synth(
    out: Annotated[Path, typer.Argument(help="Folder for the generated BIDS dataset.")],
    subjects: Annotated[int, typer.Option(help="Number of participants.")] = 30,
    small: Annotated[bool, typer.Option("--small", help="20x20x12 grid instead of 64x64x40.")] = False,
    signal: Annotated[str, typer.Option(help="What the BOLD follows: 'framegram' (the film's framegram components), "
                                             "'film' (its pixels, motion, sound and inserted objects, one region each) "
                                             "or 'null' (random time courses in those regions).")] = "framegram",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Generate a BIDS dataset shaped like OpenNeuro ds003688 with a known ground truth."""
    from framegram.datasets.bids import SIGNALS, generate_dataset

    if signal not in SIGNALS:
        raise fail(f"brain synth: --signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
    generate_dataset(out, subjects=subjects, small=small, show_progress=not quiet, signal=signal)
    typer.echo(f"{subjects} participants -> {out}")


@brain_app.command("fit")
def brain_fit(
    bids: Annotated[Path, typer.Option("--bids", help="BIDS root (derivatives/fmriprep confounds used when present).")],
    stimulus: Annotated[Path, typer.Option("--stimulus", help="The film (video or .framegram.npz).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for maps, predictions and results.json.")],
    subjects: Annotated[list[str] | None, typer.Option("--subjects", "-s", help="Participant labels (repeat; default: all).")] = None,
    offset: Annotated[float, typer.Option(help="Seconds after the first scan at which the film starts.")] = 0.0,
    basis: Annotated[str, typer.Option(help="Response shape: 'hrf' (SPM HRF, its delay fitted per participant) or 'fir' (a weight per delay 0-10 s).")] = "hrf",
    components: Annotated[int | None, typer.Option(help="Principal components of the stimulus kept (default: the pipeline's).")] = None,
    train_fraction: Annotated[float, typer.Option(help="First part of the run used to train.")] = 0.7,
    no_controls: Annotated[bool, typer.Option("--no-controls", help="Skip the controls and the published protocol.")] = False,
    task: Annotated[str, typer.Option(help="BIDS task label.")] = "film",
    mask: Annotated[Path | None, typer.Option("--mask", help="Brain mask (NIfTI on the BOLD's grid) instead of fMRIPrep's desc-brain_mask or nilearn's EPI mask.")] = None,
    spaces: Annotated[str, typer.Option(help="Feature spaces of the film, comma-separated (`framegram brain spaces` lists them); "
                                             "several are fitted with banded ridge.")] = "framegram",
    space_components: Annotated[int, typer.Option(help="Principal components kept per space when there are several.")] = 10,
    mixtures: Annotated[int, typer.Option(help="Space mixtures a voxel may choose besides each space alone (0: one space a voxel).")] = 0,
    no_partition: Annotated[bool, typer.Option("--no-partition", help="Skip the unique and shared R² of each space "
                                                                    "(a banded fit without each space: ~70 % of the time).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Fit per-voxel ridge encoding models and score them on the held-out end of each run."""
    from framegram.brain.pipeline import fit_dataset
    from framegram.fmri.config import BrainConfig

    chosen = {} if components is None else {"n_components": components or None}
    try:
        config = BrainConfig(offset_s=offset, basis=basis, train_fraction=train_fraction, controls=not no_controls,
                             published=not no_controls, mask=None if mask is None else str(mask),
                             spaces=tuple(name.strip() for name in spaces.split(",") if name.strip()),
                             space_components=space_components, banded_mixtures=mixtures, partition=not no_partition,
                             **chosen)
    except ValueError as exc:
        raise fail(f"brain fit: {exc}") from None
    with brain_warnings():
        results = fit_dataset(bids, stimulus, out, subjects or None, config, show_progress=not quiet, task=task)
    for s in json.loads(results.read_text())["subjects"]:
        typer.echo(
            f"sub-{s['subject']}: {s['significant']}/{s['voxels']} voxels significant, "
            f"mean r {s['mean_r']:.3f} (top 1 %: {s['top1pct_r']:.3f}), response peak {s['profile_peak_s']:.2f} s"
        )
        for name, space in (s.get("spaces") or {}).items():
            typer.echo(f"    {name}: alone r {space['mean_r_alone']:.3f}, best space of {space['voxels_best']} significant voxels")
    typer.echo(f"results: {results}")


@brain_app.command("spaces")
def brain_spaces() -> None:
    """List the feature spaces a fit can use (shape, rate, cost)."""
    from framegram.fmri.spaces import describe_spaces

    for name, text in describe_spaces().items():
        typer.echo(f"{name:14s} {text}")


@brain_app.command("report")
def brain_report(
    out: Annotated[Path, typer.Argument(help="The folder written by `framegram brain fit`.")],
    html_path: Annotated[Path | None, typer.Option("--html", help="Report file (default: OUT/report.html).")] = None,
) -> None:
    """Write the HTML report of a fit: r maps, histograms, delay profiles, controls, published protocol."""
    from framegram.brain.report import write_brain_report

    typer.echo(f"report: {write_brain_report(out, html_path)}")
