"""Signals from silent video: the conditional VAE beside its baselines, on fMRI and on sound.

fMRI (the brain benchmark's generated dataset: ds003688-shaped, 30 participants, full grid, known
responsive region). All models see the same cleaned BOLD, mask and split (first 70 % of each run
trains, the last 30 % is scored):
- conditional VAE: one model for every participant (participant embedding and read-out);
- pooled VAE: the same network blind to the participant;
- regression: the conditional network trained deterministically (mean squared error);
- ridge: the brain pipeline, one himalaya ridge per participant per voxel (`brain.fit_subject`,
  SPM HRF with a delay fitted per participant), the per-participant model the VAE is measured by;
- PCA ceiling: the held-out BOLD's own reconstruction from the shared components (what any model
  predicting them could reach at best).
Scores: per-voxel r on the held-out volumes, mean over the responsive region, per participant.

Sound (the generated audio-visual set: 200 training and 40 test clips of 4 s; pitch is the note of
the scene, loudness follows the disc's size; a hidden stretch per clip is random): the VAE (pooled: there
are no participants), the regression with the same encoder, and the training clips' mean
spectrogram as the trivial predictor. Scores on the test clips: log-spectral distance (dB) of the
mean prediction and of single draws, split by clear and ambiguous frames; the spread of 8 draws
(std in dB, mean over bands) in ambiguous against clear frames; STOI of Griffin-Lim waveforms,
beside Griffin-Lim of the true spectrogram (the reconstruction's own ceiling). One test clip's
waveforms and spectrograms go to bench/results/vae/ for the demo report.

Film (`--brain-film`, bench/results/vae_film.json): the conditional VAE with every stimulus feature
space (`fmri.spaces.SPACE_NAMES`, 20 components each, the HRF started -1..3 s late: these participants'
responses peak at 4-6.5 s) on the brain benchmark's film-signal dataset (small grid, regions following
the film's pixels, motion, sound and inserted objects); per region, the mean held-out voxel r of its
prediction, per participant and averaged over them, beside the PCA ceiling.

Runs train into `<cache>/bench/vae-v1/` and resume.

    .venv/bin/python bench/vae.py [--subjects 30] [--skip-fmri] [--skip-audio]
    .venv/bin/python bench/vae.py --brain-film [--subjects 30] [--epochs 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_result  # noqa: E402

from framegram.fmri.metrics import pearson_r  # noqa: E402
from framegram.paths import cache_dir  # noqa: E402
from framegram.vae import VAEConfig, train_signal_model  # noqa: E402
from framegram.vae.train import default_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = cache_dir() / "bench" / "vae-v1"

FMRI = default_config("fmri")  # 30 participants x 449 training volumes
AUDIO = default_config("audio")  # 200 training clips of 100 frames
FILM_EPOCHS = 40  # the fMRI default; --brain-film with 30 participants and five spaces
#: components a space for --brain-film: with 20 a space (100 features x 5 HRF delays as inputs) the
#: VAE reached r 0.09-0.15 per region on 30 participants; with 5 a space, 0.16-0.34 on the first 10
#: (the framegram alone with 20: 0.35 in the semantic region, below zero in the motion region)
FILM_FEATURES = 5
FMRI_MODELS = {"conditional VAE": FMRI, "pooled VAE": replace(FMRI, conditional=False),
               "regression": replace(FMRI, kind="regression")}
AUDIO_MODELS = {"VAE": AUDIO, "regression": replace(AUDIO, kind="regression")}


def run_dir(target: str, config: VAEConfig, data_info: dict) -> Path:
    digest = hashlib.sha256(json.dumps([asdict(config), data_info], sort_keys=True, default=str).encode()).hexdigest()[:10]
    return RUNS / target / f"{config.kind}-{'c' if config.conditional else 'p'}-{digest}"


def train_all(target: str, models: dict[str, VAEConfig], data) -> dict:
    runs = {}
    for name, config in models.items():
        t0 = time.perf_counter()
        runs[name] = train_signal_model(config, data, run_dir(target, config, data.info), show_progress=sys.stderr.isatty())
        seconds = sum(h["seconds"] for h in runs[name].history)
        print(f"{target} {name}: trained ({seconds:.0f} s of training, {time.perf_counter() - t0:.0f} s this call)", file=sys.stderr)
    return runs


# --- fMRI ---------------------------------------------------------------------------------------


def fmri_bench(subjects: int, components: int) -> dict:
    import nibabel as nib

    from framegram.brain.pipeline import fit_subject
    from framegram.cache import framegram_for
    from framegram.datasets.bids import generate_dataset
    from framegram.fmri.bids import find_runs
    from framegram.fmri.config import BrainConfig
    from framegram.vae.fmri import build_fmri_set, to_voxels, voxel_r

    root = cache_dir() / "bench" / "brain-full"
    generate_dataset(root, subjects=subjects, small=False, show_progress=False)
    synth = root / "derivatives" / "framegram-synth"
    truth = json.loads((synth / "truth.json").read_text())
    film = root / truth["stimulus"]
    labels = [f"{i:02d}" for i in range(1, subjects + 1)]
    config = BrainConfig(offset_s=truth["stimulus_offset_s"], controls=False, published=False)
    t0 = time.perf_counter()
    data, held = build_fmri_set(root, film, labels, n_components=components, config=config, show_progress=sys.stderr.isatty())
    build_s = time.perf_counter() - t0
    region = (nib.load(synth / "desc-responsive_mask.nii.gz").get_fdata() > 0)[held.mask]
    runs = train_all("fmri", FMRI_MODELS, data)

    scores: dict[str, dict[str, float]] = {name: {} for name in [*FMRI_MODELS, "ridge", "PCA ceiling"]}
    examples = {}
    for seq in data.sequences:
        subject = seq.name.removeprefix("sub-")
        for name, run in runs.items():
            pred = run.predict(seq.features, run.sequence_participant(seq, data), n=16)
            scores[name][subject] = float(voxel_r(pred, data, held, subject)[region].mean())
        reconstruction = to_voxels(seq.target, data.targets, held.cleaners[subject])[held.test[subject]]
        scores["PCA ceiling"][subject] = float(pearson_r(reconstruction, held.bold[subject])[region].mean())
    gram, _ = framegram_for(film)
    ridge_s = time.perf_counter()
    for run in find_runs(root, labels):
        fit = fit_subject(run, gram.features, gram.times, config, mask=held.mask)
        scores["ridge"][run.subject] = float(fit.r[region].mean())
        if run.subject == labels[0]:
            examples = fmri_examples(runs["conditional VAE"], data, held, fit, region)
        print(f"sub-{run.subject}: ridge {scores['ridge'][run.subject]:.3f}, conditional VAE "
              f"{scores['conditional VAE'][run.subject]:.3f}", file=sys.stderr)
    ridge_s = time.perf_counter() - ridge_s

    names = list(scores)
    rows = [[f"sub-{s}", *(f"{scores[n][s]:.3f}" for n in names),
             f"{scores['conditional VAE'][s] / scores['ridge'][s]:.2f}"] for s in labels]
    means = {n: float(np.mean(list(scores[n].values()))) for n in names}
    rows.append(["mean", *(f"**{means[n]:.3f}**" for n in names), f"**{means['conditional VAE'] / means['ridge']:.2f}**"])
    print(f"\n## fMRI: held-out mean r in the responsive region ({subjects} participants, {int(held.mask.sum())} mask "
          f"voxels, {int(region.sum())} responsive; {components} shared components)\n")
    print(markdown_table(["participant", *names, "conditional VAE / ridge"], rows))
    ratio = means["conditional VAE"] / means["ridge"]
    print(f"\nconditional VAE / ridge: {ratio:.3f} (target >= 0.9); conditional - pooled: "
          f"{means['conditional VAE'] - means['pooled VAE']:+.3f}; set built in {build_s:.0f} s, ridge fits {ridge_s:.0f} s")
    return {"subjects": subjects, "components": components, "mask_voxels": int(held.mask.sum()),
            "responsive_voxels": int(region.sum()), "scores": scores, "means": means, "ratio_to_ridge": ratio,
            "configs": {n: asdict(c) for n, c in FMRI_MODELS.items()},
            "training_s": {n: sum(h["seconds"] for h in r.history) for n, r in runs.items()},
            "curves": {n: r.history for n, r in runs.items()}, "build_s": build_s, "ridge_s": ridge_s,
            "example": examples}


def fmri_examples(run, data, held, ridge_fit, region: np.ndarray, voxels: int = 3) -> dict:
    """Held-out time courses of the first participant's best-predicted responsive voxels (by ridge):
    measured (cleaned), conditional VAE mean and two draws, ridge."""
    from framegram.vae.fmri import to_voxels

    seq = data.sequences[0]
    subject = seq.name.removeprefix("sub-")
    test = held.test[subject]
    candidates = np.flatnonzero(region)
    best = candidates[np.argsort(ridge_fit.r[candidates])[::-1][:voxels]]
    draws = run.sample(seq.features, subject, n=16)
    cleaner = held.cleaners[subject]
    mean = to_voxels(draws.mean(0), data.targets, cleaner)[test][:, best]
    samples = [to_voxels(d, data.targets, cleaner)[test][:, best] for d in draws[:2]]
    return {"subject": subject, "tr": data.step_seconds, "first_volume": int(test[0]), "voxels": best.tolist(),
            "measured": held.bold[subject][:, best].T.round(3).tolist(), "vae_mean": mean.T.round(3).tolist(),
            "vae_samples": [s.T.round(3).tolist() for s in samples], "ridge": ridge_fit.pred_test[:, best].T.round(3).tolist()}


# --- fMRI: the film-signal dataset, every feature space ---------------------------------------

FILM_ROOT = cache_dir() / "bench" / "brain-film-small"


def film_bench(subjects: int, components: int, epochs: int, n_features: int = FILM_FEATURES) -> dict:
    import nibabel as nib

    from framegram.datasets.bids import DatasetTruth, generate_dataset
    from framegram.fmri.config import BrainConfig
    from framegram.fmri.spaces import SPACE_NAMES
    from framegram.vae.fmri import build_fmri_set, to_voxels, voxel_r
    from framegram.vae.fmri_stimulus import EARLY_HRF_DELAYS_S

    truth_json = FILM_ROOT / "derivatives" / "framegram-synth" / "truth.json"
    made = len(json.loads(truth_json.read_text())["subjects"]) if truth_json.is_file() else 0
    # never fewer participants than the folder holds: truth.json lists those generated last
    truth: DatasetTruth = generate_dataset(FILM_ROOT, subjects=max(subjects, made), small=True, signal="film",
                                           show_progress=False)
    labels = [f"{i:02d}" for i in range(1, subjects + 1)]
    offset_s = json.loads(truth.truth_json.read_text())["stimulus_offset_s"]
    config = BrainConfig(offset_s=offset_s, controls=False, published=False)
    tty = sys.stderr.isatty()
    t0 = time.perf_counter()
    data, held = build_fmri_set(FILM_ROOT, truth.stimulus, labels, n_components=components, n_features=n_features, config=config,
                                show_progress=tty, spaces=SPACE_NAMES, hrf_delays_s=EARLY_HRF_DELAYS_S)
    build_s = time.perf_counter() - t0
    model = replace(FMRI, epochs=epochs)
    run = train_signal_model(model, data, run_dir("fmri-film", model, data.info), show_progress=tty)
    regions = {name: (nib.load(path).get_fdata() > 0)[held.mask] for name, path in truth.regions.items()}
    vae = {name: [] for name in regions}
    ceiling = {name: [] for name in regions}
    for seq in data.sequences:
        subject = seq.name.removeprefix("sub-")
        r = voxel_r(run.predict(seq.features, subject, n=16), data, held, subject)
        recon = to_voxels(seq.target, data.targets, held.cleaners[subject])[held.test[subject]]
        r_ceiling = pearson_r(recon, held.bold[subject])
        for name, region in regions.items():
            vae[name].append(float(r[region].mean()) if region.any() else float("nan"))
            ceiling[name].append(float(r_ceiling[region].mean()) if region.any() else float("nan"))
        print(f"sub-{subject}: " + ", ".join(f"{n} {v[-1]:.3f}" for n, v in vae.items()), file=sys.stderr)
    # the brain pipeline's numbers on the same dataset and split, from bench/brain.py's last run
    brain = json.loads((RESULTS / "brain.json").read_text()) if (RESULTS / "brain.json").is_file() else {}
    beside = brain.get("regions") if brain.get("signal") == "film" and brain.get("subjects") == subjects else {}
    rows = [[name, int(regions[name].sum()), f"**{np.mean(vae[name]):.3f}**", f"{np.mean(ceiling[name]):.3f}",
             *(f"{beside[name][k]:.3f}" if name in (beside or {}) else "n/a" for k in ("banded_r", "best_single_r", "oracle_r"))]
            for name in regions]
    print(f"\n## fMRI, film signal: conditional VAE on {', '.join(SPACE_NAMES)} ({subjects} participants, held-out "
          f"mean r per region; banded, best single space and oracle from bench/results/brain.json)\n")
    print(markdown_table(["region", "voxels in the mask", "conditional VAE", "PCA ceiling", "banded ridge",
                          "best single space", "oracle"], rows))
    training_s = sum(h["seconds"] for h in run.history)
    print(f"\nset built in {build_s:.0f} s, {len(run.history)} epochs trained in {training_s:.0f} s", file=sys.stderr)
    return {"regions": {name: {"vae_r": float(np.mean(vae[name])), "per_participant": vae[name],
                               "pca_ceiling_r": float(np.mean(ceiling[name])), "voxels": int(regions[name].sum())}
                        for name in regions},
            "settings": {"subjects": labels, "components": components, "spaces": list(SPACE_NAMES),
                         "features_per_space": data.info["n_features"] // len(SPACE_NAMES),
                         "hrf_delays_s": list(EARLY_HRF_DELAYS_S), "mask_voxels": int(held.mask.sum()),
                         "model": asdict(model), "dataset": str(FILM_ROOT)},
            "build_s": build_s, "training_s": training_s, "curve": run.history}


# --- sound --------------------------------------------------------------------------------------


def audio_bench() -> dict:
    from framegram.datasets.audio_visual import build_audio_visual, write_wav
    from framegram.vae.audio import build_audio_set, log_spectral_distance, mel_to_wave, stoi
    from framegram.vae.predict import plot_spectrograms

    root = build_audio_visual(show_progress=sys.stderr.isatty())
    data, clips = build_audio_set(root, show_progress=sys.stderr.isatty())
    runs = train_all("audio", AUDIO_MODELS, data)
    train_mean = np.concatenate([data.targets.inverse(s.target) for s in data.sequences if s.train.all()]).mean(0)
    by_name = {s.name: s for s in data.sequences}
    lsd = {k: {"all": [], "clear": [], "ambiguous": []} for k in ("VAE mean", "VAE draw", "regression", "training mean")}
    spread = {"clear": [], "ambiguous": []}
    quality = {k: [] for k in ("VAE mean", "VAE draw", "regression", "Griffin-Lim of the true spectrogram")}
    example = None
    for i, name in enumerate(clips.names):
        seq, true = by_name[name], clips.mel[name]
        ambiguous = clips.ambiguous[name]
        draws = np.stack([data.targets.inverse(d) for d in runs["VAE"].sample(seq.features, n=8, seed=i)])
        predictions = {"VAE mean": data.targets.inverse(runs["VAE"].predict(seq.features, n=16, seed=i)),
                       "regression": data.targets.inverse(runs["regression"].predict(seq.features)),
                       "training mean": np.broadcast_to(train_mean, true.shape)}
        for key, pred in predictions.items():
            for part, rows in (("all", slice(None)), ("clear", ~ambiguous), ("ambiguous", ambiguous)):
                lsd[key][part].append(log_spectral_distance(pred[rows], true[rows]))
        for part, rows in (("all", slice(None)), ("clear", ~ambiguous), ("ambiguous", ambiguous)):
            lsd["VAE draw"][part].append(float(np.mean([log_spectral_distance(d[rows], true[rows]) for d in draws])))
        band_std = draws.std(0).mean(1)  # [T]: spread of the draws, dB, mean over bands
        spread["clear"].append(float(band_std[~ambiguous].mean()))
        spread["ambiguous"].append(float(band_std[ambiguous].mean()))
        waves = {"VAE mean": mel_to_wave(predictions["VAE mean"], i), "VAE draw": mel_to_wave(draws[0], i),
                 "regression": mel_to_wave(predictions["regression"], i),
                 "Griffin-Lim of the true spectrogram": mel_to_wave(true, i)}
        for key, wave in waves.items():
            quality[key].append(stoi(clips.audio[name], wave))
        if example is None:
            example = write_audio_example(name, clips, waves, {"true": true, "regression": predictions["regression"],
                                          "VAE mean": predictions["VAE mean"], "VAE draw 1": draws[0], "VAE draw 2": draws[1]},
                                          data.step_seconds, write_wav, plot_spectrograms)
    mean = lambda v: float(np.mean(v))  # noqa: E731
    rows = [[k, f"{mean(v['all']):.2f}", f"{mean(v['clear']):.2f}", f"{mean(v['ambiguous']):.2f}",
             f"{mean(quality[k]):.3f}" if k in quality else "n/a"] for k, v in lsd.items()]
    rows.append(["Griffin-Lim of the true spectrogram", "0.00", "0.00", "0.00", f"{mean(quality['Griffin-Lim of the true spectrogram']):.3f}"])
    print(f"\n## Sound: {len(clips.names)} test clips of the generated audio-visual set\n")
    print(markdown_table(["prediction", "LSD dB (all frames)", "LSD dB (clear)", "LSD dB (ambiguous)", "STOI"], rows))
    ratio = mean(spread["ambiguous"]) / max(mean(spread["clear"]), 1e-9)
    print(f"\nspread of 8 VAE draws (std, dB): clear frames {mean(spread['clear']):.2f}, ambiguous frames "
          f"{mean(spread['ambiguous']):.2f} (x{ratio:.1f})")
    return {"clips": {"train": int(sum(s.train.all() for s in data.sequences)), "test": len(clips.names)},
            "lsd": {k: {p: mean(v) for p, v in parts.items()} for k, parts in lsd.items()},
            "stoi": {k: mean(v) for k, v in quality.items()}, "spread_db": {k: mean(v) for k, v in spread.items()},
            "spread_ratio": ratio, "configs": {n: asdict(c) for n, c in AUDIO_MODELS.items()},
            "training_s": {n: sum(h["seconds"] for h in r.history) for n, r in runs.items()},
            "curves": {n: r.history for n, r in runs.items()}, "example": example}


def write_audio_example(name, clips, waves, spectra, step_seconds, write_wav, plot_spectrograms) -> dict:
    folder = RESULTS / "vae"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"true": f"{name}-true.wav"}
    write_wav(clips.audio[name], folder / files["true"])
    for key, wave in waves.items():
        files[key] = f"{name}-{key.lower().replace(' ', '-')}.wav"
        write_wav(wave, folder / files[key])
    plot_spectrograms(spectra, step_seconds, folder / f"{name}-spectrograms.png")
    return {"clip": name, "wav": files, "spectrograms": f"{name}-spectrograms.png",
            "ambiguous_frames": np.flatnonzero(clips.ambiguous[name]).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--components", type=int, default=128)
    ap.add_argument("--skip-fmri", action="store_true")
    ap.add_argument("--skip-audio", action="store_true")
    ap.add_argument("--brain-film", action="store_true",
                    help="only the conditional VAE with every feature space on the film-signal dataset (vae_film.json)")
    ap.add_argument("--epochs", type=int, default=FILM_EPOCHS, help="--brain-film: training epochs")
    ap.add_argument("--features", type=int, default=FILM_FEATURES, help="--brain-film: principal components a space")
    ap.add_argument("--out", type=Path, default=None, help="result file (default: bench/results/vae.json, vae_film.json)")
    args = ap.parse_args()
    if args.brain_film:
        t0 = time.perf_counter()
        result = film_bench(args.subjects, args.components, args.epochs, args.features)
        result["wall_s"] = time.perf_counter() - t0  # with the spaces' first computation and any training still to do
        result["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        write_result(args.out or RESULTS / "vae_film.json", result)
        return
    args.out = args.out or RESULTS / "vae.json"
    result = json.loads(args.out.read_text()) if args.out.is_file() else {}  # a partial run updates its part
    parts = {"fmri": lambda: fmri_bench(args.subjects, args.components), "audio": audio_bench}
    for name, run in parts.items():
        if getattr(args, f"skip_{name}"):
            continue
        t0 = time.perf_counter()
        result[name] = run()
        # wall time includes building the data and any training still to do (runs resume)
        result[name]["wall_s"] = time.perf_counter() - t0
        result[name]["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    write_result(args.out, result)


if __name__ == "__main__":
    main()
