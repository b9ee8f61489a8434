"""Production style transfer: give one recording the EQ and dynamics "style" of another.

DeepAFx-ST's idea (Steinmetz, Bryan & Reiss, JAES 2022): a chain of ordinary audio effects
(6-band parametric EQ -> compressor -> output gain) is differentiable, so its 25 parameters can be
optimised so that the processed input *sounds produced like* a reference, even though input and
reference say different things. ``diffdsp.tasks.style.transfer`` compares content-independent
style features (long-term spectrum in mel bands, loudness, the distribution of short-term levels,
crest factor) and fits the EQ first (cheaply, on frame powers), then the compressor.

Here the input and the reference are two different sentences of the same speaker, each passed
through the chain with different random settings; the fit should move the input's style towards
the reference's. Key figure: the style distance to the reference (spectrum error in dB, loudness
error in LU) before and after.

Run:  python examples/style_transfer.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from diffdsp import data
from diffdsp.io import load_audio, resample, save_audio
from diffdsp.tasks.style import random_settings, style_chain, style_distance, transfer

SAMPLE_RATE = 16000


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short audio, few steps")
    parser.add_argument("--out", type=Path, default=Path("out_style_transfer"),
                        help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    # 1) two different excerpts of real speech (LibriSpeech), 16 kHz mono
    speech, sr = load_audio(data.path("speech_music/speech_librispeech_198-209-0000.flac"))
    speech = resample(speech[:1], sr, SAMPLE_RATE)
    n = int((1.5 if args.quick else 5.0) * SAMPLE_RATE)
    a, b = speech[None, :, :n], speech[None, :, n: 2 * n]  # (1, 1, T) each

    # 2) give each a different production: the chain with two random settings
    chain = style_chain(SAMPLE_RATE)
    settings = random_settings(chain, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        x = chain(a, settings[:1])  # the input we will restyle
        ref = chain(b, settings[1:])  # the reference whose style we want
    peak = float(torch.maximum(x.abs().max(), ref.abs().max()))
    x, ref = x * (0.5 / peak), ref * (0.5 / peak)

    # 3) the fit: EQ stage then dynamics stage (see the docstring of transfer)
    fit = transfer(x, ref, sample_rate=SAMPLE_RATE, steps=30 if args.quick else 300,
                   chain=style_chain(SAMPLE_RATE), seed=0)
    y = fit.output.detach()

    # 4) key figures: style distances before and after
    before = style_distance(x[0], ref[0], sample_rate=SAMPLE_RATE)
    after = style_distance(y[0], ref[0], sample_rate=SAMPLE_RATE)
    for key in before:
        print(f"{key:18s} {before[key]:7.2f} -> {after[key]:7.2f}")
    print(f"fitted in {fit.fit.get('seconds', 0.0):.1f} s; compressor: "
          + ", ".join(f"{k} {v:.1f}" for k, v in fit.settings[0]["compressor"].items()))

    # 5) artefacts: the three signals and the fitted settings in physical units
    save_audio(args.out / "input.wav", x[0], SAMPLE_RATE)
    save_audio(args.out / "reference.wav", ref[0], SAMPLE_RATE)
    save_audio(args.out / "output.wav", y[0], SAMPLE_RATE)
    (args.out / "settings.json").write_text(json.dumps(fit.settings[0], indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def ltas_db(sig: torch.Tensor) -> torch.Tensor:  # long-term average spectrum
        spec = torch.stft(sig.reshape(-1), 1024, 256, window=torch.hann_window(1024),
                          return_complex=True).abs().pow(2).mean(-1)
        return 10 * torch.log10(spec.clamp_min(1e-12))

    f = torch.fft.rfftfreq(1024, 1 / SAMPLE_RATE)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, sig, style in [("input", x, "b"), ("reference", ref, "k"), ("output", y, "r--")]:
        ax.semilogx(f[1:], ltas_db(sig)[1:], style, label=label)
    ax.set(xlabel="frequency (Hz)", ylabel="power (dB)", title="long-term average spectra")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "spectra.png", dpi=100)
    plt.close(fig)
    summary = {f"{k}_before": v for k, v in before.items()}
    summary.update({f"{k}_after": v for k, v in after.items()})
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
