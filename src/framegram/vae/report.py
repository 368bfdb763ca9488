"""The demo report's section on signals from silent video, from the benchmark's recorded result
(`bench/results/vae.json` and the example files in `bench/results/vae/`, written by `bench/vae.py`):
the fMRI table and predicted against measured time courses, the sound table, a spectrogram set and
audio players. Training on 30 participants takes minutes, too long for `make demo`, so the section
shows the recorded result and names the command that reproduces it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from framegram.report.html import Html, Section, figure_img, heading, paragraph, png_img, table
from framegram.report.results import default_results_dir
from framegram.report.sections import DemoContext

ORDER = 60


def vae_section(results: Path | None = None) -> Section:
    """The section for the results folder `results` (vae.json and vae/; default: `default_results_dir()`);
    without vae.json, one line saying so and how to produce it."""
    if results is None:
        results = default_results_dir()
    path = results / "vae.json"
    if not path.is_file():
        return Section("Signals from silent video", paragraph(
            f"No benchmark result at {path}: run `.venv/bin/python bench/vae.py` to train the conditional VAE and its "
            "baselines on the generated fMRI dataset and audio-visual clips."), order=ORDER)
    result = json.loads(path.read_text())
    parts = [paragraph(
        "A conditional variational model (after arXiv 2011.07340) predicts a signal from the framegram of a silent "
        "video: an LSTM over the frames gives the prior over a latent, the target's encoder the posterior, a decoder "
        "the signal; one model serves every participant through a participant embedding and read-out. "
        "Source: bench/results/vae.json (`bench/vae.py`).")]
    if "fmri" in result:
        parts += _fmri_parts(result["fmri"])
    if "audio" in result:
        parts += _audio_parts(result["audio"], results / "vae")
    return Section("Signals from silent video", parts, order=ORDER)


def _fmri_parts(fmri: dict) -> list[Html]:
    means = fmri["means"]
    rows = [[name, f"{value:.3f}"] for name, value in means.items()]
    parts = [
        heading("fMRI: held-out mean r in the responsive region"),
        paragraph(f"{fmri['subjects']} generated participants (ds003688-shaped, known responsive region of "
                  f"{fmri['responsive_voxels']} voxels), the last 30 % of every run held out; the VAE predicts "
                  f"{fmri['components']} components shared by all participants. Conditional VAE / per-participant "
                  f"ridge: {fmri['ratio_to_ridge']:.2f}."),
        table(["model", "mean r"], rows),
    ]
    if fmri.get("example"):
        parts.append(figure_img(_time_course_figure(fmri["example"]), alt="predicted and measured BOLD"))
    return parts


def _time_course_figure(example: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(example["voxels"])
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n), sharex=True, squeeze=False)
    t = (example["first_volume"] + np.arange(len(example["measured"][0]))) * example["tr"]
    for i, ax in enumerate(axes[:, 0]):
        z = lambda v: (np.asarray(v) - np.mean(v)) / (np.std(v) + 1e-9)  # noqa: E731
        ax.plot(t, z(example["measured"][i]), color="black", linewidth=1, label="measured (cleaned)")
        for k, sample in enumerate(example["vae_samples"]):
            ax.plot(t, z(sample[i]), color="tab:orange", alpha=0.35, linewidth=0.8, label="VAE draws" if k == 0 else None)
        ax.plot(t, z(example["vae_mean"][i]), color="tab:red", linewidth=1.4, label="conditional VAE (mean)")
        ax.plot(t, z(example["ridge"][i]), color="tab:blue", linewidth=1, linestyle="--", label="ridge")
        ax.set_ylabel(f"voxel {example['voxels'][i]}\n(z)")
    axes[0, 0].set_title(f"sub-{example['subject']}, held-out volumes")
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("scan time (s)")
    fig.tight_layout()
    return fig


def _audio_parts(audio: dict, folder: Path) -> list[Html]:
    rows = [[name, f"{v['all']:.2f}", f"{v['clear']:.2f}", f"{v['ambiguous']:.2f}",
             f"{audio['stoi'][name]:.3f}" if name in audio["stoi"] else "n/a"] for name, v in audio["lsd"].items()]
    spread = audio["spread_db"]
    parts = [
        heading("Sound: the paper's own task on generated clips"),
        paragraph(f"{audio['clips']['test']} held-out clips: pitch is the note of the scene, loudness follows the disc's size; "
                  f"while the disc is hidden the tone is random. Spread of 8 VAE draws: {spread['clear']:.2f} dB on "
                  f"clear frames, {spread['ambiguous']:.2f} dB on ambiguous ones (x{audio['spread_ratio']:.1f})."),
        table(["prediction", "LSD dB (all)", "LSD dB (clear)", "LSD dB (ambiguous)", "STOI"], rows),
    ]
    example = audio.get("example")
    if not example:
        return parts
    missing = [f for f in [example["spectrograms"], *example["wav"].values()] if not (folder / f).is_file()]
    if (folder / example["spectrograms"]).is_file():
        parts.append(png_img((folder / example["spectrograms"]).read_bytes(), alt="true and predicted spectrograms"))
        players = []
        for name, file in example["wav"].items():
            if (folder / file).is_file():
                data = base64.b64encode((folder / file).read_bytes()).decode("ascii")
                players.append(f"<tr><td>{html.escape(name)}</td><td><audio controls src='data:audio/wav;base64,{data}'>"
                               "</audio></td></tr>")
        parts += [heading(f"Listen: {example['clip']}"), Html(f"<table><tbody>{''.join(players)}</tbody></table>")]
    if missing:
        parts.append(paragraph(f"Example files not found in {folder}: {', '.join(missing)}."))
    return parts


def vae_demo_section(ctx: DemoContext) -> Section:
    return vae_section(ctx.results)
