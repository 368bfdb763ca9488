"""`framegram vae synth-audio | train | predict`: signals from silent video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framegram.cli.brain import brain_warnings
from framegram.cli.common import fail


vae_app = typer.Typer(no_args_is_help=True, help="Signals from silent video: a conditional VAE predicting fMRI or sound from the framegram.")


@vae_app.command("synth-audio")
def vae_synth_audio(
    out: Annotated[Path, typer.Argument(help="Folder for the generated audio-visual clips.")],
    train_clips: Annotated[int, typer.Option("--train", help="Training clips.")] = 200,
    test_clips: Annotated[int, typer.Option("--test", help="Held-out clips.")] = 40,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Generate clips whose sound follows what is seen (pitch: which real scene it is, loudness: the disc's size),
    with a stretch per clip where the disc is hidden and the sound is random."""
    from framegram.datasets.audio_visual import build_audio_visual

    if train_clips < 1 or test_clips < 1:
        raise fail(f"--train and --test must be at least 1, got {train_clips}, {test_clips}")
    typer.echo(f"{train_clips} + {test_clips} clips -> {build_audio_visual(out, train_clips, test_clips, seed, show_progress=not quiet)}")


@vae_app.command("train")
def vae_train(
    target: Annotated[str, typer.Option("--target", help="'fmri' (a BIDS dataset and its film) or 'audio' (a folder from `vae synth-audio`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (rerun the same command to resume).")],
    bids: Annotated[Path | None, typer.Option("--bids", help="fmri: BIDS root.")] = None,
    stimulus: Annotated[Path | None, typer.Option("--stimulus", help="fmri: the film (video or .framegram.npz).")] = None,
    subjects: Annotated[list[str] | None, typer.Option("--subjects", "-s", help="fmri: participant labels (repeat; default: all).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="audio: folder of clips.")] = None,
    mask: Annotated[Path | None, typer.Option("--mask", help="fmri: brain mask (NIfTI on the BOLD's grid) instead of fMRIPrep's desc-brain_mask or nilearn's EPI mask.")] = None,
    pooled: Annotated[bool, typer.Option("--pooled", help="fmri: one model blind to the participant (no embedding, shared read-out).")] = False,
    regression: Annotated[bool, typer.Option("--regression", help="Train the deterministic baseline (same encoder, mean squared error) instead.")] = False,
    components: Annotated[int, typer.Option(help="fmri: principal components of the voxels predicted.")] = 128,
    spaces: Annotated[str, typer.Option("--spaces", help="fmri: the film's feature spaces, comma-separated (framegram, "
                                        "lite0-blocks, image-stats, motion-energy, sound), 20 components each.")] = "framegram",
    epochs: Annotated[int, typer.Option(help="Passes of 50 batches.")] = 40,
    beta: Annotated[float, typer.Option(help="Weight of the KL term.")] = 1.0,
    lam: Annotated[float, typer.Option("--lambda", help="Weight of the reconstruction term.")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a signal model on the training part (fmri: the first 70 % of every run; audio: the training clips)."""
    from framegram.vae import train_signal_model
    from framegram.vae.train import default_config

    signal_set = _vae_data(target, bids, stimulus, subjects, data, components, quiet, mask, spaces)
    try:
        config = default_config(target, kind="regression" if regression else "vae",
                                conditional=target == "fmri" and not pooled, epochs=epochs, beta=beta, lam=lam, seed=seed)
    except ValueError as e:
        raise fail(str(e)) from None
    run = train_signal_model(config, signal_set, out, show_progress=not quiet)
    last = run.history[-1]
    typer.echo(f"{config.kind} on {target}: epoch {last['epoch']}, " + ", ".join(
        f"{k} {v:.3f}" for k, v in last.items() if k in ("loss", "nll", "kl", "mse")) + f" -> {out}")


def _vae_data(target, bids, stimulus, subjects, data, components, quiet, mask=None, spaces="framegram"):
    if target == "fmri":
        if bids is None or stimulus is None:
            raise fail("--target fmri needs --bids and --stimulus")
        from framegram.fmri.config import BrainConfig
        from framegram.vae.fmri import build_fmri_set

        config = BrainConfig(mask=None if mask is None else str(mask), spaces=parse_spaces(spaces))
        with brain_warnings():
            return build_fmri_set(bids, stimulus, subjects or None, n_components=components, config=config,
                                  show_progress=not quiet)[0]
    if mask is not None:
        raise fail("--mask is for --target fmri")
    if spaces != "framegram":
        raise fail("--spaces is for --target fmri")
    if target == "audio":
        if data is None:
            raise fail("--target audio needs --data (a folder made by `framegram vae synth-audio`)")
        from framegram.vae.audio import build_audio_set

        return build_audio_set(data, show_progress=not quiet)[0]
    raise fail(f"--target must be 'fmri' or 'audio', got {target!r}")


@vae_app.command("predict")
def vae_predict(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="Run folder written by `framegram vae train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the predictions.")],
    video: Annotated[Path | None, typer.Option("--video", help="audio: the silent video to give sound to.")] = None,
    bids: Annotated[Path | None, typer.Option("--bids", help="fmri: BIDS root holding the participant's run (its TR and length).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="fmri: participant label.")] = None,
    stimulus: Annotated[Path | None, typer.Option("--stimulus", help="fmri: the film.")] = None,
    spaces: Annotated[str | None, typer.Option("--spaces", help="fmri: the feature spaces the model must have been "
                                               "trained on, comma-separated (default: the checkpoint's).")] = None,
    samples: Annotated[int, typer.Option(help="Draws written beside the mean prediction.")] = 4,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write predictions: WAVs and spectrograms for a video (audio models), 4-D NIfTI for a participant (fMRI models)."""
    from framegram.vae import load_signal_run
    from framegram.vae.predict import predict_audio, predict_fmri

    if samples < 0:
        raise fail(f"--samples must be >= 0, got {samples}")
    run = load_signal_run(checkpoint)
    if run.kind == "audio":
        if video is None:
            raise fail(f"{checkpoint} is an audio model: pass --video")
        if spaces is not None:
            raise fail(f"{checkpoint} is an audio model: --spaces is for fMRI models")
        paths = predict_audio(run, video, out, samples, seed)
    else:
        if bids is None or subject is None or stimulus is None:
            raise fail(f"{checkpoint} is an fMRI model: pass --bids, --subject and --stimulus")
        with brain_warnings():
            paths = predict_fmri(run, bids, subject, stimulus, out, samples, seed,
                                 spaces=None if spaces is None else parse_spaces(spaces))
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def parse_spaces(text: str) -> tuple[str, ...]:
    """`--spaces a,b,c` as names, each a known feature space, none twice (else the one-line error)."""
    from framegram.fmri.spaces import SPACE_NAMES

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SPACE_NAMES]
    if unknown or not names:
        raise fail(f"--spaces: unknown feature space {', '.join(map(repr, unknown)) or '(none given)'}; "
                   f"known: {', '.join(SPACE_NAMES)}")
    if len(set(names)) != len(names):
        raise fail(f"--spaces names a feature space twice: {text}")
    return names
