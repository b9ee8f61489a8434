"""Synth modules, the DAG patch, JSON round trips, presets, gradients."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.synth import modules as M
from diffdsp.synth.patch import Patch
from diffdsp.synth.presets import PRESETS, get_preset
from tests.helpers import REF_TOL, assert_close, assert_finite, gradcheck64

SR = 8000


def _ctx(batch: int = 2, n: int = 64) -> M.RenderContext:
    return M.RenderContext(sample_rate=SR, n_samples=n, batch=batch,
                           note_s=torch.full((batch,), 0.004, dtype=torch.float64),
                           dtype=torch.float64, device=torch.device("cpu"),
                           generator=torch.Generator().manual_seed(0))


def _inputs(module: M.SynthModule, batch: int, n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    out: dict[str, torch.Tensor] = {}
    for port in M.module_ports(module):
        kind = module.port_kinds.get(port, "audio")
        if kind == "pitch":
            out[port] = torch.full((batch, 1), 300.0, dtype=torch.float64)
        else:
            out[port] = torch.rand(batch, n, generator=g, dtype=torch.float64) * 2 - 1
    return out


MODULE_SPECS = [
    {"type": "note"}, {"type": "vco", "config": {"waveform": "saw"}},
    {"type": "vco", "config": {"waveform": "sine", "fm": True, "pitch_mod": True}},
    {"type": "vco", "config": {"waveform": "pulse"}},
    {"type": "vco", "config": {"waveform": "morph"}},
    {"type": "lfo", "config": {"shape": "triangle"}}, {"type": "adsr"}, {"type": "vca"},
    {"type": "mixer", "config": {"n_inputs": 2}}, {"type": "filter", "config": {"kind": "lowpass"}},
    {"type": "noise"}, {"type": "tremolo"}, {"type": "waveshaper"},
]


@pytest.mark.parametrize("spec", MODULE_SPECS, ids=lambda s: s["type"] + str(s.get("config", "")))
def test_every_module_gradcheck(spec: dict) -> None:
    module = M.build_module(spec)
    batch, n = 2, 48
    names = list(module.param_ranges)
    # parameters strictly inside their ranges, off the kinks
    u = torch.linspace(0.31, 0.69, len(names), dtype=torch.float64)[None].repeat(batch, 1)
    u[1] = u[1] * 0.9 + 0.05
    inputs = _inputs(module, batch, n)

    def fn(uu: torch.Tensor) -> torch.Tensor:
        params = {k: module.param_ranges[k].denormalise(uu[:, i]) for i, k in enumerate(names)}
        return module(inputs, params, _ctx(batch, n)).expand(batch, n)

    gradcheck64(fn, [u.requires_grad_(True)], atol=1e-4, rtol=1e-3)


def test_patch_validation_errors() -> None:
    with pytest.raises(InputError, match="no input port"):
        Patch({"n": M.Note(), "o": M.VCO()}, [("n", "o.nope")], "o")
    with pytest.raises(InputError, match="needs its input port"):
        Patch({"n": M.Note(), "o": M.VCO()}, [], "o")
    with pytest.raises(InputError, match="cycle"):
        Patch({"n": M.Note(), "a": M.VCA(), "b": M.VCA(), "o": M.VCO()},
              [("n", "o.freq"), ("o", "a.in"), ("a", "b.in"), ("b", "a.gain"), ("b", "a.in")],
              "b")
    with pytest.raises(InputError, match="not a module"):
        Patch({"n": M.Note()}, [], "x")
    with pytest.raises(InputError, match="unknown module type"):
        M.build_module({"type": "theremin"})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_gradients_finite_nonzero_over_1000_random_sets(name: str) -> None:
    patch = get_preset(name, SR)
    u = patch.sample(1000, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    y = patch(u, n_samples=64, note_s=0.004, generator=torch.Generator().manual_seed(0))
    assert isinstance(y, torch.Tensor) and y.shape == (1000, 1, 64)
    assert_finite(y)
    # per-item loss so that each set's gradient is its own
    (y.pow(2).mean((-2, -1)) + y.mean((-2, -1))).sum().backward()
    assert u.grad is not None
    assert_finite(u.grad)
    nonzero_per_set = (u.grad.abs() > 0).any(-1)
    assert bool(nonzero_per_set.all())
    # every parameter gets a gradient for some set
    assert bool((u.grad.abs() > 0).any(0).all()), patch.param_names


@pytest.mark.parametrize("name", ["subtractive", "voice"])
def test_batch_equals_stacked_items(name: str) -> None:
    patch = get_preset(name, SR)
    u = patch.sample(3, generator=torch.Generator().manual_seed(2))
    y = patch(u, n_samples=400, generator=torch.Generator().manual_seed(0))
    assert isinstance(y, torch.Tensor)
    for i in range(3):
        yi = patch(u[i:i + 1], n_samples=400, generator=torch.Generator().manual_seed(0))
        assert isinstance(yi, torch.Tensor)
        if name == "voice":  # noise draws depend on the batch: compare the deterministic part
            continue
        assert_close(yi[0], y[i], type(REF_TOL[torch.float32])(1e-5, 1e-6))


def test_json_round_trip_renders_identically(tmp_path: Path) -> None:
    patch = get_preset("filter_envelope", SR)
    u = patch.sample(1, generator=torch.Generator().manual_seed(5))
    params = {k: float(v[0]) for k, v in patch.denormalise(u).items()}
    path = patch.save(tmp_path / "patch.json", params)
    loaded, stored = Patch.load(path)
    assert stored is not None and set(stored) == set(params)
    assert loaded.param_names == patch.param_names
    a = patch.render(params, n_samples=500)
    b = loaded.render(stored, n_samples=500)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    assert torch.equal(a, b)
    d = json.loads(path.read_text())
    assert d["format"] == "diffdsp.patch/1" and d["output"] == "lpf"
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        Patch.load(tmp_path / "bad.json")


def test_normalise_denormalise_and_return_all() -> None:
    patch = get_preset("subtractive", SR)
    u = patch.normalise({"note.f0_hz": 440.0})
    assert abs(float(patch.denormalise(u)["note.f0_hz"][0]) - 440.0) < 1e-2
    outs = patch(u, n_samples=300, return_all=True)
    assert isinstance(outs, dict) and set(outs) == set(patch.order)
    assert all(v.shape == (1, 300) for v in outs.values())
    with pytest.raises(InputError, match="fixed"):
        patch.render({"saw.ratio": 2.0}, n_samples=10)
    with pytest.raises(InputError, match=r"normalised parameters"):
        patch(torch.rand(1, 3), n_samples=10)


def test_subtractive_pitch_is_the_note() -> None:
    patch = get_preset("subtractive", 16000)
    y = patch.render({"note.f0_hz": 220.0, "lpf.cutoff_hz": 4000.0, "env.attack_s": 0.001},
                     n_samples=16000)
    assert isinstance(y, torch.Tensor)
    spec = np.abs(np.fft.rfft(y[0, 0].numpy() * np.hanning(16000)))
    assert abs(int(spec.argmax()) - 220) <= 1


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_no_grad_in_place_render_equals_autograd_render(name: str) -> None:
    """Without gradients, modules write into buffers they own; the output must not change and the
    caller's parameters must be left untouched."""
    patch = get_preset(name, SR)
    u = patch.sample(4, generator=torch.Generator().manual_seed(3))
    u_before = u.clone()
    with torch.no_grad():
        y_fast = patch(u, n_samples=2000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(u, u_before)
    y_grad = patch(u.clone().requires_grad_(True), n_samples=2000,
                   generator=torch.Generator().manual_seed(0))
    assert isinstance(y_fast, torch.Tensor) and isinstance(y_grad, torch.Tensor)
    assert torch.equal(y_fast, y_grad.detach())
    outs = patch(u, n_samples=2000, return_all=True, generator=torch.Generator().manual_seed(0))
    assert isinstance(outs, dict)
    assert torch.equal(outs[patch.output], y_fast.reshape(outs[patch.output].shape))


@pytest.mark.parametrize(("kind", "cutoff_hz", "sample_rate"),
                         [("lowpass", 2000.0, 44100), ("highpass", 300.0, 16000),
                          ("bandpass", 500.0, 8000)])
def test_filter_runs_the_stored_cutoff(kind: str, cutoff_hz: float, sample_rate: int) -> None:
    """Away from its limits, the synth filter is the RBJ biquad at exactly ``cutoff_hz``."""
    import scipy.signal

    from diffdsp.functional.filters import biquad

    q = 2.0
    x = torch.randn(1, 1500, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ctx = M.RenderContext(sample_rate=sample_rate, n_samples=1500, batch=1,
                          note_s=torch.tensor([0.1]), dtype=torch.float64,
                          device=torch.device("cpu"))
    p = {"cutoff_hz": torch.tensor([cutoff_hz], dtype=torch.float64),
         "q": torch.tensor([q], dtype=torch.float64),
         "mod_depth_oct": torch.zeros(1, dtype=torch.float64)}
    ours = M.Filter(kind)({"in": x}, p, ctx)
    b, a = biquad(kind, cutoff_hz=torch.tensor(cutoff_hz, dtype=torch.float64),
                  q=torch.tensor(q, dtype=torch.float64), sample_rate=sample_rate)
    ref = scipy.signal.lfilter(b.numpy(), a.numpy(), x[0].numpy())
    # the clamp moves a cutoff 2.8+ octaves inside the limits by < 2e-8 relative
    np.testing.assert_allclose(ours[0].numpy(), ref, rtol=0, atol=1e-7)


def test_effective_cutoff_is_monotone_and_bounded() -> None:
    f = torch.logspace(-3, 7, 2001, dtype=torch.float64)
    fc = M.effective_cutoff_hz(f, 16000)
    assert bool((fc.diff() >= 0).all())  # increasing (flat in float64 only where it saturates)
    mid = (f > 1.0) & (f < 1e5)
    assert bool((fc[mid].diff() > 0).all())
    assert float(fc.min()) >= 10.0 and float(fc.max()) <= 0.45 * 16000
    assert float(fc[mid].min()) > 10.0 and float(fc[mid].max()) < 0.45 * 16000
    inside = (f > 20.0) & (f < 0.45 * 16000 / 2)  # more than an octave inside both limits
    assert float(((fc[inside] - f[inside]).abs() / f[inside]).max()) < 6e-4
