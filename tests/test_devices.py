"""Every kernel on every device: forward and backward against the float64 CPU result.

The ``device`` fixture gives CPU always and CUDA when a GPU is present. On CUDA the recursions take
the chunked-scan path (the numba kernels are CPU-only), the STFT losses their torch path, and any
tensor a function builds on the CPU by mistake fails here with a device mismatch. On the CPU the
float32 run is held to the float64 one, which is a precision check of the same code.

Tolerances: float32 results within ``RTOL_F32`` of the float64 result's largest magnitude (the
EDC's backward integral over 4096 samples accumulates about n * eps = 2.4e-4 of rounding, the
largest of these cases); float64 on another device within ``RTOL_F64``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from diffdsp.functional import dynamics, fdn, filters, fir, iir, oscillators
from diffdsp.functional.analysis import loudness_lufs
from diffdsp.losses.acoustic import edc_loss
from diffdsp.losses.spectral import MultiResolutionSTFTLoss

RTOL_F32 = 1e-3
RTOL_F64 = 1e-9
# The reverb recipe renders float32 landscapes; at its shortest T60 (0.1 s) the 1 s response falls
# below float32's FFT rounding floor (about -140 dB re. its peak, the EDC floor) long before its
# end, and there the band EDCs in dB are rounding noise that depends on the FFT implementation:
# measured on an H100, the loss at that point is 0.11 % (CPU) and 0.89 % (CUDA) off the float64
# value (4.0255, equal on both devices to 1e-13); every other point agrees to 1e-6.
RTOL_EDC_FLOOR = 1e-2
SR = 16000

# A case makes its inputs from a CPU generator (float64), and maps them, once moved to the device
# under test, to one output tensor. Inputs listed in ``grad`` get gradients of <output, w>.
Inputs = dict[str, Tensor]
Case = tuple[Callable[[torch.Generator], Inputs], Callable[[Inputs], Tensor], tuple[str, ...]]


def _stable_sos(g: torch.Generator, sections: int) -> Tensor:
    radius = 0.5 + 0.45 * torch.rand(sections, generator=g, dtype=torch.float64)
    angle = torch.pi * torch.rand(sections, generator=g, dtype=torch.float64)
    a1, a2 = -2 * radius * torch.cos(angle), radius**2
    b = torch.randn(sections, 3, generator=g, dtype=torch.float64)
    ones = torch.ones(sections, dtype=torch.float64)
    return torch.cat([b, torch.stack([ones, a1, a2], -1)], -1)


def _noise(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _fdn_inputs(g: torch.Generator) -> Inputs:
    n = 4
    q, _ = torch.linalg.qr(_noise(g, n, n))
    return {"x": _noise(g, 2, 2048), "matrix": q * 0.9, "b": _noise(g, n), "c": _noise(g, n)}


def _fdn_forward(t: Inputs) -> Tensor:
    b, a = filters.biquad("lowpass", cutoff_hz=3000.0, q=0.707, sample_rate=SR)
    sos = torch.cat([b, a], -1).to(t["x"])
    return fdn.fdn_time(t["x"], delay_samples=[149, 211, 263, 293], feedback_matrix=t["matrix"],
                        input_gains=t["b"], output_gains=t["c"],
                        attenuation_sos=sos.reshape(1, 1, 6).expand(4, 1, 6))


def _compressor_inputs(g: torch.Generator) -> Inputs:
    burst = _noise(g, 2, 4096) * torch.linspace(0.0, 1.0, 4096, dtype=torch.float64).square()
    return {"x": burst, "threshold_db": torch.tensor([-20.0, -12.0], dtype=torch.float64),
            "attack_ms": torch.tensor([5.0, 2.0], dtype=torch.float64),
            "release_ms": torch.tensor([50.0, 120.0], dtype=torch.float64)}


def _harmonic_inputs(g: torch.Generator) -> Inputs:
    f0 = 110.0 + 50.0 * torch.rand(2, 16, generator=g, dtype=torch.float64)
    return {"f0": f0, "amps": torch.rand(2, 16, 8, generator=g, dtype=torch.float64),
            "mags": torch.rand(2, 16, 17, generator=g, dtype=torch.float64)}


def _harmonic_forward(t: Inputs) -> Tensor:
    tone = oscillators.harmonic_synth(t["f0"], t["amps"], n_samples=2048, hop=128, sample_rate=SR)
    noise = torch.ones(2, 2048, dtype=t["mags"].dtype, device=t["mags"].device)
    return tone + oscillators.filtered_noise(t["mags"], n_samples=2048, hop=128, noise=noise)


def _fdn_transfer_forward(t: Inputs) -> Tensor:
    # lossless-ish lines on 257 bins: g_i(w) = 0.95 e^{-j w m_i}; real view of the complex output
    w = torch.linspace(0.0, torch.pi, 257, dtype=t["matrix"].dtype, device=t["matrix"].device)
    m = torch.tensor([149.0, 211.0, 263.0, 293.0], dtype=w.dtype, device=w.device)
    line = 0.95 * torch.exp(-1j * w[:, None] * m)
    h = fdn.fdn_transfer(line, feedback_matrix=t["matrix"], input_gains=t["b"],
                         output_gains=t["c"])
    return torch.view_as_real(h)


_MRSTFT = MultiResolutionSTFTLoss(fft_sizes=[256, 512], hop_sizes=[64, 128], win_lengths=[256, 512])

CASES: dict[str, Case] = {
    "sosfilt": (lambda g: {"sos": _stable_sos(g, 3), "x": _noise(g, 2, 4096)},
                lambda t: iir.sosfilt(t["sos"], t["x"]), ("sos", "x")),
    "lfilter_zi": (lambda g: {"b": _noise(g, 3), "a": torch.tensor([1.0, -1.2, 0.5]).double(),
                              "x": _noise(g, 2, 4096), "zi": _noise(g, 2, 2)},
                   lambda t: iir.lfilter(t["b"], t["a"], t["x"], zi=t["zi"]),
                   ("b", "a", "x", "zi")),
    "allpole": (lambda g: {"x": _noise(g, 2, 4096),
                           "a": torch.tensor([[-0.9], [0.5]], dtype=torch.float64)},
                lambda t: iir.allpole(t["x"], t["a"]), ("x", "a")),
    "fdn_time": (_fdn_inputs, _fdn_forward, ("x", "matrix", "b", "c")),
    # on the CPU a compiled per-bin elimination, elsewhere torch.linalg.solve
    "fdn_transfer": (_fdn_inputs, _fdn_transfer_forward, ("matrix", "b", "c")),
    "compressor": (_compressor_inputs,
                   lambda t: dynamics.compressor(t["x"], sample_rate=SR,
                                                 threshold_db=t["threshold_db"],
                                                 attack_ms=t["attack_ms"],
                                                 release_ms=t["release_ms"]),
                   ("x", "threshold_db", "attack_ms", "release_ms")),
    "time_varying_fir": (lambda g: {"x": _noise(g, 2, 1024), "taps": _noise(g, 2, 1024, 9)},
                         lambda t: fir.time_varying_fir(t["x"], t["taps"]), ("x", "taps")),
    # harmonic_synth takes f0 as an analysed input, not a learned one: no gradient (documented).
    "harmonic_noise_synth": (_harmonic_inputs, _harmonic_forward, ("amps", "mags")),
    "mrstft_loss": (lambda g: {"x": _noise(g, 2, 4096), "y": _noise(g, 2, 4096)},
                    lambda t: _MRSTFT.to(t["x"].device)(t["x"], t["y"]).reshape(1), ("x",)),
    "edc_loss": (lambda g: {"x": _noise(g, 2, 4096) * torch.exp(-torch.arange(4096) / 800.0),
                            "y": _noise(g, 2, 4096) * torch.exp(-torch.arange(4096) / 600.0)},
                 lambda t: edc_loss(t["x"], t["y"], sample_rate=SR, bands="octave").reshape(1),
                 ("x",)),
    "loudness": (lambda g: {"x": 0.1 * _noise(g, 2, 2 * SR)},
                 lambda t: loudness_lufs(t["x"], sample_rate=SR), ("x",)),
}


def _evaluate(case: Case, device: torch.device, dtype: torch.dtype) -> list[Tensor]:
    make, forward, grad_names = case
    g = torch.Generator().manual_seed(0)
    inputs = {k: v.to(device=device, dtype=dtype).requires_grad_(k in grad_names)
              for k, v in make(g).items()}
    out = forward(inputs)
    assert out.device.type == device.type, f"output left {device} for {out.device}"
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad((out * w.to(out)).sum(), [inputs[k] for k in grad_names])
    return [t.detach().to("cpu", torch.float64) for t in (out, *grads)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_matches_float64_cpu(name: str, device: torch.device) -> None:
    """Output and every input gradient on ``device`` equal the float64 CPU result."""
    reference = _evaluate(CASES[name], torch.device("cpu"), torch.float64)
    runs = [(torch.float32, RTOL_F32)]
    if device.type != "cpu":
        runs.append((torch.float64, RTOL_F64))
    for dtype, rtol in runs:
        got = _evaluate(CASES[name], device, dtype)
        labels = ["output", *(f"d/d{k}" for k in CASES[name][2])]
        for label, a, b in zip(labels, got, reference, strict=True):
            assert torch.isfinite(a).all(), f"{name} {label} not finite on {device} {dtype}"
            scale = float(b.abs().max()) or 1.0
            err = float((a - b).abs().max()) / scale
            assert err <= rtol, f"{name} {label} on {device} {dtype}: rel. error {err:.2e} > {rtol}"


def _needs_accelerator(device: torch.device) -> None:
    if device.type == "cpu":
        pytest.skip("compares another device with the CPU; on the CPU there is nothing to compare")


@pytest.mark.parametrize("task", ["reverb", "match", "style", "align", "gain"])
def test_landscape_recipe_on_device(task: str, device: torch.device) -> None:
    """Every landscape recipe and every one of its losses gives the CPU's values on ``device``
    (losses built on the CPU, renders and target on the device: nothing may stay behind)."""
    from diffdsp.tasks.landscape import build_recipe, compute_landscapes

    _needs_accelerator(device)
    recipe = build_recipe(task)
    names = list(recipe.default_params)[:1]

    def values(dev: torch.device) -> dict[str, Tensor]:
        res = compute_landscapes(recipe, names, losses=list(recipe.losses), points=5, device=dev)
        return {loss: r.loss.to("cpu", torch.float64) for loss, _, r in res}

    ref, got = values(torch.device("cpu")), values(device)
    for loss, v in ref.items():
        scale = float(v.abs().max()) or 1.0
        err = float((got[loss] - v).abs().max()) / scale
        rtol = RTOL_EDC_FLOOR if (task, loss) == ("reverb", "edc") else RTOL_F32
        assert err <= rtol, f"{task} {loss} on {device}: rel. error {err:.2e} > {rtol}"


def test_style_transfer_on_device(device: torch.device) -> None:
    """Per-example style transfer runs on ``device`` end to end and moves the style towards the
    reference (EQ stage, compressor stage and the closed-form loudness step)."""
    from diffdsp.tasks.style import style_distance, transfer

    _needs_accelerator(device)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(1, 1, 16000, generator=g) * 0.05).to(device)
    ref = oscillators.filtered_noise(torch.linspace(1.0, 0.05, 33).expand(1, 8, 33).contiguous(),
                                     n_samples=16000, hop=2000, generator=g)[:, None].to(device)
    fit = transfer(x, 0.3 * ref, sample_rate=16000, steps=30, dyn_steps=5, lr=0.1)
    assert fit.output.device.type == device.type and torch.isfinite(fit.output).all()
    before = style_distance(x[0].cpu(), 0.3 * ref[0].cpu(), sample_rate=16000)
    after = style_distance(fit.output[0].cpu(), 0.3 * ref[0].cpu(), sample_rate=16000)
    assert after["loudness_error_lu"] < 0.5 < before["loudness_error_lu"]
    assert after["spectrum_error_db"] < 0.5 * before["spectrum_error_db"]
