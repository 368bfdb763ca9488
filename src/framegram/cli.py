"""The `framegram` command. User errors print one line on stderr and exit with status 2."""

from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from framegram.errors import FramegramError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deep learning on video through framegrams: [T x D] time series of pretrained image features.",
)

EXIT_USER_ERROR = 2


def fail(message: str) -> typer.Exit:
    typer.echo(f"framegram: error: {message}", err=True)
    return typer.Exit(EXIT_USER_ERROR)


@app.command()
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="Video files and/or folders (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .framegram.npz files.")],
    fps: Annotated[float, typer.Option(help="Samples per second.")] = 5.0,
    encoder: Annotated[str, typer.Option(help="Frame encoder (see `framegram encoders`).")] = "efficientnet-lite0",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Extract framegrams; videos already done are skipped, bad files are listed at the end."""
    from framegram.batch import extract_folder

    if fps <= 0:
        raise fail(f"--fps must be positive, got {fps}")
    result = extract_folder(inputs, out, encoder=encoder, fps=fps, show_progress=not quiet)
    if not quiet or result.failed:
        typer.echo(
            f"{len(result.done)} extracted, {len(result.skipped)} already done, {len(result.failed)} failed",
            err=bool(result.failed),
        )
    for video, reason in result.failed.items():
        typer.echo(f"failed: {video}: {reason}", err=True)
    if result.failed:
        raise typer.Exit(1)


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="A .framegram.npz file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write (.png, .svg, .pdf).")],
) -> None:
    """Draw the framegram picture: features min-max scaled, time in seconds along x."""
    from framegram.framegram import Framegram

    Framegram.load(file).render(out)
    typer.echo(str(out))


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A .framegram.npz file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
) -> None:
    """Print a framegram's shape, time span, source and encoder."""
    from framegram.framegram import Framegram

    fg = Framegram.load(file)
    meta = fg.meta
    if as_json:
        typer.echo(json.dumps({"frames": len(fg), "dim": fg.dim, **json.loads(meta.to_json())}, indent=2))
        return
    src = meta.source
    lines = [
        f"file       {file}",
        f"shape      {len(fg)} x {fg.dim} (T x D)",
        f"times      {fg.times[0]:.2f} .. {fg.times[-1]:.2f} s at {meta.fps:g} samples/s",
        f"source     {src.path}  ({src.width}x{src.height}, {src.codec}, "
        f"{src.duration if src.duration is not None else float('nan'):.2f} s, sha256 {src.sha256[:16]}...)",
        f"encoder    {meta.encoder.name} ({meta.encoder.version})",
        f"preproc    {meta.encoder.preprocessing}",
        f"schema     {meta.schema_version} (framegram {meta.framegram_version})",
    ]
    typer.echo("\n".join(lines))


@app.command()
def shots(
    source: Annotated[Path, typer.Argument(help="A video, or a .framegram.npz file.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for <name>.scenes.csv and .json (default: beside the input).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Detect shot boundaries: cuts and gradual transitions (fades, dissolves); writes CSV and JSON."""
    from framegram.cache import framegram_for
    from framegram.keyframes import detect_shots
    from framegram.keyframes.output import write_shot_list

    fg, cached = framegram_for(source, show_progress=not quiet)
    shot_list = detect_shots(fg)
    stem = (out or source.parent) / source.name.removesuffix(".framegram.npz").rsplit(".", 1)[0]
    csv_path, json_path = write_shot_list(fg, shot_list, stem)
    for b in shot_list.boundaries:
        span = f"{b.start:8.2f} s" if b.kind == "cut" else f"{b.start:8.2f} - {b.end:.2f} s"
        typer.echo(f"{b.kind:8s} {span}")
    typer.echo(
        f"{len(shot_list.shots)} shots, {len(shot_list.boundaries)} boundaries "
        f"({'cached' if cached else 'new'} framegram) -> {csv_path}, {json_path}"
    )


@app.command()
def keyframes(
    source: Annotated[Path, typer.Argument(help="A video, or a .framegram.npz file whose source video still exists (found by content if moved beside it).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for keyframe images, contact_sheet.png, keyframes.json.")],
    n: Annotated[int | None, typer.Option("-n", help="Number of keyframes (default: one per shot).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Pick one sharp, representative keyframe per shot (or -n of them) and write images and a contact sheet."""
    from framegram.cache import framegram_for, is_framegram_file
    from framegram.framegram import find_source_video
    from framegram.keyframes import detect_shots, select_keyframes
    from framegram.keyframes.output import write_keyframes

    if n is not None and n < 1:
        raise fail(f"-n must be at least 1, got {n}")
    fg, _ = framegram_for(source, show_progress=not quiet)
    video = find_source_video(fg, source) if is_framegram_file(source) else source
    chosen = select_keyframes(fg, detect_shots(fg), n)
    index = write_keyframes(video, fg, chosen, out)
    typer.echo(f"{len(chosen)} keyframes -> {out} (contact_sheet.png, {index.name})")


@app.command()
def encoders() -> None:
    """List the registered frame encoders."""
    from framegram.encoders import list_encoders

    typer.echo("\n".join(list_encoders()))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for framegrams, pictures and report.html.")] = Path(
        "demo-output"
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    results: Annotated[Path | None, typer.Option(
        "--results", help="Folder of recorded benchmark results (classify.json, vae.json, vae/) for the classification "
        "and signals sections. Default: bench/results of the checkout in the working directory, else the results "
        "packaged with framegram.")] = None,
) -> None:
    """The main job: framegrams of the real sample videos, rendered into one HTML report."""
    from framegram.demo import run_demo

    report = run_demo(out, show_progress=not quiet, results=results)
    typer.echo(f"report: {report}")


index_app = typer.Typer(no_args_is_help=True, help="Build and inspect a video search index (a directory).")
app.add_typer(index_app, name="index")
IndexOption = Annotated[Path, typer.Option("--index", "-i", help="The index directory.")]


@index_app.command("add")
def index_add(
    videos: Annotated[list[Path], typer.Argument(help="Video files, .framegram.npz files and/or folders (searched recursively).")],
    index: IndexOption,
    fingerprint: Annotated[str, typer.Option(help="For a new index: 'hand' (the hand-designed fingerprint) or "
                                             "'learned:RUN' (a run of `framegram fingerprint train`).")] = "hand",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Add videos; creates the index if needed, skips content already in it, lists the items it could
    not add and goes on. Ids: the path inside a folder given (clips/a/x.mp4 from clips: a/x.mp4), or
    the file name of a file given directly."""
    from framegram.batch import find_videos_with_ids
    from framegram.search import add_videos
    from framegram.search.learned import fingerprint_from_spec

    failed: dict[Path, str] = {}
    found = find_videos_with_ids(videos)
    added = add_videos([v for v, _ in found], index, ref_ids=[i for _, i in found], show_progress=not quiet,
                       on_error=lambda v, e: failed.setdefault(v, str(e)), fingerprint=fingerprint_from_spec(fingerprint))
    typer.echo(f"{len(added)} added, {len(found) - len(added) - len(failed)} already indexed, {len(failed)} failed -> {index}")
    for reason in failed.values():  # each reason names its file
        typer.echo(f"failed: {reason}", err=True)
    if failed:
        raise typer.Exit(1)


@index_app.command("info")
def index_info(
    index: IndexOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON, with the list of videos.")] = False,
) -> None:
    """How many videos and seconds the index holds, its size, and what the fingerprints are."""
    from dataclasses import asdict

    from framegram.search import VideoIndex

    ix = VideoIndex.open(index)
    info = ix.info()
    if as_json:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
        data["videos_list"] = [asdict(v) for v in sorted(ix.videos.values(), key=lambda v: v.first_row)]
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo("\n".join([
        f"index     {info.folder}",
        f"videos    {info.videos}",
        f"indexed   {info.seconds} s ({info.seconds / 3600:.2f} h)",
        f"storage   {info.bytes_on_disk / 1e6:.2f} MB on disk; {info.vector_bytes_per_second:.0f} bytes per indexed second",
        f"encoder   {info.encoder} at {info.fps:g} fps; {ix.fingerprint.dims}-dim 8-bit fingerprints, one per second",
        f"describer {info.fingerprint}",
    ]))


@index_app.command("check")
def index_check(index: IndexOption) -> None:
    """Verify the index: its fingerprint against the records, the vectors file against its checksum and
    row count, every video's rows. Exit 0 when sound; one line naming what is damaged otherwise."""
    from framegram.search import VideoIndex

    ix = VideoIndex.open(index)  # the fingerprint, checksum and row checks
    problems = ix.verify()
    if problems:
        raise FramegramError(f"{index}: damaged: " + "; ".join(problems))
    typer.echo(f"{index}: sound ({len(ix)} videos, {ix.total_rows} indexed seconds, generation {ix.generation}; "
               "vectors checksum verified)")


@index_app.command("remove")
def index_remove(
    ref_ids: Annotated[list[str], typer.Argument(help="Ids of the videos to remove (see `index info --json`).")],
    index: IndexOption,
) -> None:
    """Remove videos from the index (no rebuild)."""
    from framegram.search import VideoIndex

    removed = VideoIndex.open(index).remove(ref_ids)
    typer.echo(f"{len(removed)} removed from {index}")


@app.command("search")
def search_command(
    clip: Annotated[Path, typer.Argument(help="The query clip (a video file).")],
    index: IndexOption,
    top: Annotated[int, typer.Option("--top", "-k", help="Matches to print at most.")] = 5,
    threshold: Annotated[float | None, typer.Option(help="Minimum score (default: the calibrated one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matches as JSON.")] = False,
) -> None:
    """Which indexed video the clip comes from and where: ranked matches with timestamps."""
    from dataclasses import asdict

    from framegram.search import search

    if top < 1:
        raise fail(f"--top must be at least 1, got {top}")
    matches = search(clip, index, top_k=top, threshold="calibrated" if threshold is None else threshold)
    if as_json:
        typer.echo(json.dumps([asdict(m) for m in matches], indent=2))
        return
    if not matches:
        typer.echo(f"no match for {clip.name} (no score reaches the threshold)")
        return
    for rank, m in enumerate(matches, 1):
        typer.echo(
            f"{rank}. {m.ref_id}  {_clock(m.ref_start)}-{_clock(m.ref_end)}  "
            f"(clip {m.query_start:.1f}-{m.query_end:.1f} s)  score {m.score:.3f}"
        )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:05.2f}"


brain_app = typer.Typer(no_args_is_help=True, help="Predict fMRI responses to a film from its framegram (BIDS in, NIfTI maps out).")
app.add_typer(brain_app, name="brain")


@contextmanager
def _brain_warnings():
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Generate a BIDS dataset shaped like OpenNeuro ds003688 with a known ground truth."""
    from framegram.datasets.bids import generate_dataset

    generate_dataset(out, subjects=subjects, small=small, show_progress=not quiet)
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Fit per-voxel ridge encoding models and score them on the held-out end of each run."""
    from framegram.brain.pipeline import fit_dataset
    from framegram.fmri.config import BrainConfig

    chosen = {} if components is None else {"n_components": components or None}
    try:
        config = BrainConfig(offset_s=offset, basis=basis, train_fraction=train_fraction, controls=not no_controls,
                             published=not no_controls, mask=None if mask is None else str(mask), **chosen)
    except ValueError as exc:
        raise fail(f"brain fit: {exc}") from None
    with _brain_warnings():
        results = fit_dataset(bids, stimulus, out, subjects or None, config, show_progress=not quiet, task=task)
    for s in json.loads(results.read_text())["subjects"]:
        typer.echo(
            f"sub-{s['subject']}: {s['significant']}/{s['voxels']} voxels significant, "
            f"mean r {s['mean_r']:.3f} (top 1 %: {s['top1pct_r']:.3f}), response peak {s['profile_peak_s']:.2f} s"
        )
    typer.echo(f"results: {results}")


@brain_app.command("report")
def brain_report(
    out: Annotated[Path, typer.Argument(help="The folder written by `framegram brain fit`.")],
    html_path: Annotated[Path | None, typer.Option("--html", help="Report file (default: OUT/report.html).")] = None,
) -> None:
    """Write the HTML report of a fit: r maps, histograms, delay profiles, controls, published protocol."""
    from framegram.brain.report import write_brain_report

    typer.echo(f"report: {write_brain_report(out, html_path)}")


def parse_model_options(options: list[str]) -> dict:
    """["tubelet=4", "stem=linear"] -> {"tubelet": 4, "stem": "linear"}: each value read as JSON
    (numbers, true, false, lists), else kept as text. Raises the CLI's one-line error for an option
    without "=" or given twice."""
    settings = {}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key:
            raise fail(f"--model-option takes KEY=VALUE, got {option!r}")
        if key in settings:
            raise fail(f"--model-option {key} given twice")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


@app.command("train")
def train_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered video model (framegram.video_models.list_models()).")],
    data: Annotated[Path, typer.Option("--data", help="UCF101-style folder: a subfolder of videos per class, train/test split.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoint.pt, metrics.jsonl, learning_curve.png); run again to resume.")],
    epochs: Annotated[int, typer.Option(help="Passes over the training clips.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Clips per optimizer step.")] = 8,
    clip_len: Annotated[int, typer.Option(help="Frames per clip.")] = 8,
    stride: Annotated[int, typer.Option(help="Video frames between two clip frames.")] = 1,
    size: Annotated[int, typer.Option(help="Clip height and width in pixels.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (warm-up, then cosine decay).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="Decoupled weight decay.")] = 0.05,
    optimizer: Annotated[str, typer.Option(help="'adamw' or 'sgd' (Nesterov momentum 0.9).")] = "adamw",
    clips_per_video: Annotated[int, typer.Option(help="Test-time clips averaged per video.")] = 3,
    flip: Annotated[bool | None, typer.Option("--flip/--no-flip", help="Random horizontal flips (wrong for left/right motion classes; default: the dataset's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling and augmentation.")] = 0,
    model_option: Annotated[list[str] | None, typer.Option(
        "--model-option", help="A setting of the model as KEY=VALUE, repeatable (e.g. tubelet=4 for timesformer, "
        "width=0.25 for c3d; bench/classify.py lists the table's).")] = None,
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", help="Start from the weights of a trained run of the same classes; the model may add layers "
        "(e.g. c3d-nonlocal from a c3d run: the non-local blocks start as the identity).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a video classifier on a folder of videos, validating on its test split after every epoch."""
    from framegram.video_models.registry import get_model, model_cfg_for, model_entry
    from framegram.video_models.train import TrainConfig, train

    for name, value in [("epochs", epochs), ("batch-size", batch_size), ("clip-len", clip_len), ("stride", stride),
                        ("size", size), ("clips-per-video", clips_per_video)]:
        if value < 1:
            raise fail(f"--{name} must be at least 1, got {value}")
    inputs = model_entry(model).inputs  # an unknown model or setting fails before any video is read
    model_cfg = model_cfg_for(model, clip_len, **parse_model_options(model_option or []))
    try:
        get_model(model, num_classes=2, **model_cfg)
    except TypeError as exc:  # a keyword the model's constructor does not take
        raise fail(f"model {model!r} does not take the settings {sorted(model_cfg)}: {exc}") from None
    from framegram.video_models.data import VideoFolder

    clips = {"clip_len": clip_len, "stride": stride, "size": (size, size), "inputs": inputs, "seed": seed}
    train_set = VideoFolder(data, split="train", train=True, flip=flip, **clips)
    val_set = VideoFolder(data, split="test", train=False, clips_per_video=clips_per_video, **clips)
    config = TrainConfig(model=model, num_classes=len(train_set.classes), class_names=tuple(train_set.classes),
                         epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                         seed=seed, clip_len=clip_len, stride=stride, size=(size, size), clips_per_video=clips_per_video,
                         model_cfg=model_cfg, init_from=str(init_from or ""))
    result = train(config, train_set, val_set, out, show_progress=not quiet)
    if result.resumed_from == epochs:
        typer.echo(f"{out} is trained already ({epochs} epochs): nothing to do")
    elif result.resumed_from:
        typer.echo(f"resumed after epoch {result.resumed_from}")
    last = result.history[-1]
    typer.echo(f"epoch {last['epoch']}: train loss {last['train_loss']:.3f}, acc {last['train_acc']:.3f}; "
               f"test accuracy {last['val_acc']:.3f} (videos), {last['val_clip_acc']:.3f} (single clips)")
    typer.echo(f"run: {out} ({result.checkpoint.name}, {result.metrics_log.name}, {result.learning_curve.name})")


@app.command()
def classify(
    video: Annotated[Path, typer.Argument(help="The video to classify.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="Run folder written by `framegram train`.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Refuse a checkpoint of any other model.")] = None,
    clips: Annotated[int | None, typer.Option("--clips", help="Clips averaged (default: as in the run's testing).")] = None,
    top: Annotated[int, typer.Option("--top", "-k", help="Classes printed per line.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print every probability as JSON.")] = False,
) -> None:
    """Classify a video: top classes of each clip and of the whole video (clip probabilities averaged)."""
    from framegram.video_models.infer import classify_video

    if clips is not None and clips < 1:
        raise fail(f"--clips must be at least 1, got {clips}")
    if top < 1:
        raise fail(f"--top must be at least 1, got {top}")
    names, clip_probs, video_probs = classify_video(video, checkpoint, expect_model=model, n_clips=clips)
    if as_json:
        typer.echo(json.dumps({"video": str(video), "classes": names,
                               "clip_probabilities": clip_probs.round(6).tolist(),
                               "video_probabilities": video_probs.round(6).tolist()}, indent=2))
        return

    def best(probs) -> str:
        return ", ".join(f"{names[i]} {probs[i]:.3f}" for i in probs.argsort()[::-1][:top])

    for k, probs in enumerate(clip_probs, 1):
        typer.echo(f"clip {k}/{len(clip_probs)}: {best(probs)}")
    typer.echo(f"video: {best(video_probs)}")


fingerprint_app = typer.Typer(no_args_is_help=True, help="Learned fingerprints: a network over framegram windows for the index.")
app.add_typer(fingerprint_app, name="fingerprint")


@fingerprint_app.command("train")
def fingerprint_train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (rerun the same command to resume).")],
    epochs: Annotated[int, typer.Option(help="Passes of steps-per-epoch batches.")] = 30,
    window: Annotated[float, typer.Option(help="Window length in seconds.")] = 2.0,
    dims: Annotated[int, typer.Option(help="Embedding size: bytes per indexed second.")] = 64,
    extra_sources: Annotated[int, typer.Option(help="Extra generated training videos (a multiple of 160; 2 distorted copies each).")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a learned fingerprint on distorted copies of generated videos (rendered and cached the
    first time); writes RUN/fingerprint.npz for `framegram index add --fingerprint learned:RUN`."""
    from framegram.search.contrastive import ContrastiveConfig, default_training_data, train_fingerprint

    try:
        train_set, val_set = default_training_data(extra_sources, show_progress=not quiet)
        config = ContrastiveConfig(window_frames=max(1, round(window * train_set.fps)), dims=dims, epochs=epochs, seed=seed)
    except ValueError as e:
        raise FramegramError(str(e)) from None
    fingerprint = train_fingerprint(config, train_set, val_set, out, show_progress=not quiet)
    typer.echo(f"{fingerprint.summary}; threshold {fingerprint.threshold:.3f} -> {out / 'fingerprint.npz'}")


vae_app = typer.Typer(no_args_is_help=True, help="Signals from silent video: a conditional VAE predicting fMRI or sound from the framegram.")
app.add_typer(vae_app, name="vae")


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
    epochs: Annotated[int, typer.Option(help="Passes of 50 batches.")] = 40,
    beta: Annotated[float, typer.Option(help="Weight of the KL term.")] = 1.0,
    lam: Annotated[float, typer.Option("--lambda", help="Weight of the reconstruction term.")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a signal model on the training part (fmri: the first 70 % of every run; audio: the training clips)."""
    from framegram.vae import train_signal_model
    from framegram.vae.train import default_config

    signal_set = _vae_data(target, bids, stimulus, subjects, data, components, quiet, mask)
    try:
        config = default_config(target, kind="regression" if regression else "vae",
                                conditional=target == "fmri" and not pooled, epochs=epochs, beta=beta, lam=lam, seed=seed)
    except ValueError as e:
        raise fail(str(e)) from None
    run = train_signal_model(config, signal_set, out, show_progress=not quiet)
    last = run.history[-1]
    typer.echo(f"{config.kind} on {target}: epoch {last['epoch']}, " + ", ".join(
        f"{k} {v:.3f}" for k, v in last.items() if k in ("loss", "nll", "kl", "mse")) + f" -> {out}")


def _vae_data(target, bids, stimulus, subjects, data, components, quiet, mask=None):
    if target == "fmri":
        if bids is None or stimulus is None:
            raise fail("--target fmri needs --bids and --stimulus")
        from framegram.fmri.config import BrainConfig
        from framegram.vae.fmri import build_fmri_set

        config = BrainConfig(mask=None if mask is None else str(mask))
        with _brain_warnings():
            return build_fmri_set(bids, stimulus, subjects or None, n_components=components, config=config,
                                  show_progress=not quiet)[0]
    if mask is not None:
        raise fail("--mask is for --target fmri")
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
        paths = predict_audio(run, video, out, samples, seed)
    else:
        if bids is None or subject is None or stimulus is None:
            raise fail(f"{checkpoint} is an fMRI model: pass --bids, --subject and --stimulus")
        with _brain_warnings():
            paths = predict_fmri(run, bids, subject, stimulus, out, samples, seed)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def main() -> None:
    try:
        app()
    except FramegramError as exc:
        typer.echo(f"framegram: error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("framegram: interrupted", err=True)
        sys.exit(130)
