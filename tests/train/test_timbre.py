"""DDSP timbre model: synthesis pieces against references, decoder invariants, features,
checkpoints, a Lightning training step and a 2-process DDP (gloo) smoke run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.functional.oscillators import harmonic_bank
from diffdsp.train.timbre import (
    MODEL_TYPE,
    MODEL_VERSION,
    DDSPDecoder,
    LearnableReverb,
    TimbreConfig,
    TimbreDataset,
    TimbreLightning,
    TimbreModel,
    a_weighted_loudness_db,
    analyse_harmonics,
    compute_features,
    filtered_noise,
    frames_to_samples,
    harmonic_synth,
    load_checkpoint,
    save_checkpoint,
)
from tests.helpers import Tol, assert_close, run_ddp_script

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 16, "n_harmonics": 8, "n_noise_bands": 17, "reverb_s": 0.01}


def _sine(f_hz: float, n: int, sr: int = 16000, amp: float = 1.0) -> torch.Tensor:
    return amp * torch.sin(2 * math.pi * f_hz * torch.arange(n, dtype=torch.float64) / sr)


# --- synthesis pieces ---------------------------------------------------------------------------


def test_frames_to_samples_linear_and_holds_missing_frames() -> None:
    ramp = torch.arange(5, dtype=torch.float64)[:, None] * 64.0  # frame i at sample 64 i
    up = frames_to_samples(ramp, 256, 64)[:, 0]
    assert_close(up, torch.arange(256, dtype=torch.float64), Tol(rtol=0, atol=1e-12))
    short = frames_to_samples(torch.tensor([[1.0], [3.0]]), 200, 64)[:, 0]  # needs 5 frames
    assert float(short[64]) == 3.0 and float(short[-1]) == 3.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_harmonic_synth_matches_harmonic_bank(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    frames, hop, n, sr = 11, 64, 640, 16000
    f0 = (200.0 + 300.0 * torch.rand(2, frames, generator=g, dtype=torch.float64)).to(dtype)
    amps = torch.rand(2, frames, 40, generator=g, dtype=torch.float64).to(dtype)
    ours = harmonic_synth(f0, amps, n_samples=n, hop=hop, sample_rate=sr)
    f0_up = frames_to_samples(f0.unsqueeze(-1), n, hop)[..., 0]
    ref = harmonic_bank(f0_up, frames_to_samples(amps, n, hop), sample_rate=sr)
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    assert_close(ours, ref, Tol(rtol=0, atol=tol))


def test_harmonic_synth_mutes_partials_above_nyquist_and_gradcheck() -> None:
    amps = torch.ones(1, 3, 6, dtype=torch.float64)
    y = harmonic_synth(torch.full((1, 3), 1000.0, dtype=torch.float64), amps, n_samples=8000,
                       hop=4000, sample_rate=8000)
    assert abs(float(y.square().mean()) - 1.5) < 1e-3  # harmonics 1..3 of 6 remain
    a = torch.rand(1, 4, 3, dtype=torch.float64, requires_grad=True)
    f0 = torch.tensor([[300.0, 310.0, 320.0, 330.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a_: harmonic_synth(f0, a_, n_samples=40, hop=16, sample_rate=8000), (a,))


def test_filtered_noise_identity_zero_and_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 640, generator=g, dtype=torch.float64) * 2 - 1
    flat = filtered_noise(torch.ones(2, 11, 17, dtype=torch.float64), n_samples=640, hop=64,
                          noise=noise)
    # unit magnitudes design a delay-compensated unit impulse: the noise comes out unchanged
    assert_close(flat, noise, Tol(rtol=0, atol=1e-12))
    zero = filtered_noise(torch.zeros(1, 11, 17), n_samples=600, hop=64)
    assert zero.shape == (1, 600) and float(zero.abs().max()) == 0.0
    mags = torch.rand(1, 3, 5, dtype=torch.float64, requires_grad=True)
    src = noise[:1, :32]
    assert torch.autograd.gradcheck(
        lambda m: filtered_noise(m, n_samples=30, hop=16, noise=src), (mags,))


def test_filtered_noise_shapes_the_spectrum() -> None:
    """A low-pass magnitude leaves < 1 % of the energy above its cutoff."""
    mags = torch.zeros(1, 65, 65)
    mags[..., :16] = 1.0  # 0 .. 1.9 kHz at 16 kHz
    y = filtered_noise(mags, n_samples=4096, hop=64, generator=torch.Generator().manual_seed(1))
    spec = torch.fft.rfft(y[0, 256:-256]).abs().square()
    freqs = torch.fft.rfftfreq(4096 - 512, 1 / 16000)
    assert float(spec[freqs > 2600].sum() / spec.sum()) < 0.01


def test_learnable_reverb_keeps_direct_path() -> None:
    rev = LearnableReverb(16000, 0.05)
    x = torch.zeros(1, 2000)
    x[0, 0] = 1.0
    y = rev(x)
    ir = rev.impulse_response().detach()
    assert float(ir[0]) == 0.0
    assert_close(y[0, 0], torch.tensor(1.0), Tol(rtol=0, atol=1e-6))
    assert_close(y[0, 1:800], ir[1:800], Tol(rtol=0, atol=1e-6))


# --- decoder and model ----------------------------------------------------------------------


def test_decoder_distribution_normalised_below_nyquist() -> None:
    cfg = TimbreConfig(**TINY)
    dec = DDSPDecoder(cfg)
    f0 = torch.tensor([[200.0, 1500.0, 3000.0]])  # 3 kHz: only harmonics 1, 2 below 8 kHz
    out = dec(f0, torch.full((1, 3), -30.0))
    dist = out["harmonic_distribution"]
    assert_close(dist.sum(-1), torch.ones(1, 3), Tol(rtol=0, atol=1e-5))
    assert float(dist[0, 2, 2:].detach().abs().max()) == 0.0
    assert bool((out["noise_magnitudes"] > 0).all()) and bool((out["amplitude"] > 0).all())


def test_model_batch_of_one_equals_item_in_batch() -> None:
    torch.manual_seed(0)
    model = TimbreModel(TimbreConfig(**TINY)).eval()
    f0 = torch.stack([torch.linspace(150, 300, 26), torch.linspace(400, 200, 26)])
    ld = torch.stack([torch.linspace(-60, -20, 26), torch.linspace(-20, -50, 26)])
    with torch.no_grad():
        both = model(f0, ld, n_samples=1600, generator=torch.Generator().manual_seed(3))
        one = model(f0[:1], ld[:1], n_samples=1600, generator=torch.Generator().manual_seed(3))
    assert_close(one[0], both[0], Tol(rtol=1e-5, atol=1e-5))


def test_model_silence_and_extremes_finite_with_gradients() -> None:
    model = TimbreModel(TimbreConfig(**TINY))
    f0 = torch.tensor([[20.0] * 10 + [7900.0] * 16])
    ld = torch.full((1, 26), -100.0)
    y = model(f0, ld, n_samples=1600)
    y.square().sum().backward()
    assert bool(torch.isfinite(y).all())
    assert all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_z_encoder_variant_runs_and_requires_audio() -> None:
    model = TimbreModel(TimbreConfig(**TINY, use_z=True, z_dim=4, n_mfcc=8))
    f0, ld = torch.full((1, 26), 220.0), torch.full((1, 26), -30.0)
    audio = torch.randn(1, 1600) * 0.1
    assert model(f0, ld, n_samples=1600, audio=audio).shape == (1, 1600)
    with pytest.raises(InputError, match="z encoder"):
        model(f0, ld, n_samples=1600)


def test_config_validation() -> None:
    with pytest.raises(InputError, match="multiple of frame_rate"):
        TimbreConfig(sample_rate=16000, frame_rate=300)
    with pytest.raises(InputError, match="unknown timbre config keys"):
        TimbreConfig.from_dict({"nope": 1})


# --- features ---------------------------------------------------------------------------------


def test_a_weighted_loudness_closed_forms() -> None:
    n = 16000
    ld_1k = a_weighted_loudness_db(_sine(1000.0, n), sample_rate=16000, hop=64)
    assert abs(float(ld_1k[50:-50].mean()) + 3.01) < 0.1  # mean square 1/2, A(1 kHz) = 0 dB
    ld_100 = a_weighted_loudness_db(_sine(100.0, n, amp=0.5), sample_rate=16000, hop=64)
    # 0.5 amplitude: -9.03 dB; A-weighting at 100 Hz: -19.1 dB (IEC 61672)
    assert abs(float(ld_100[50:-50].mean()) - (-9.03 - 19.1)) < 0.3
    silent = a_weighted_loudness_db(torch.zeros(1, 1000), sample_rate=16000, hop=64)
    assert bool(torch.isfinite(silent).all()) and float(silent.max()) == -100.0


def test_compute_features_sine_noise_silence() -> None:
    cfg = TimbreConfig()
    n = 8000
    g = torch.Generator().manual_seed(0)
    x = torch.stack([_sine(220.0, n, amp=0.5).float(), torch.zeros(n),
                     0.3 * torch.randn(n, generator=g)])
    feats = compute_features(x, cfg)
    assert feats["f0_hz"].shape == (3, cfg.n_frames(n))
    mid = slice(10, -10)
    assert float((feats["f0_hz"][0, mid] - 220.0).abs().max()) < 1.0
    assert bool(feats["voiced"][0, mid].all())
    assert not bool(feats["voiced"][1].any())
    assert float(feats["voiced"][2].float().mean()) < 0.2
    assert bool((feats["f0_filled_hz"][1] == 220.0).all())
    for v in feats.values():
        assert bool(torch.isfinite(v.float()).all())


def test_compute_features_in_blocks_equals_one_pass() -> None:
    cfg = TimbreConfig()
    g = torch.Generator().manual_seed(2)
    x = (_sine(330.0, 24000, amp=0.4).float() * torch.linspace(0, 1, 24000)
         + 0.01 * torch.randn(24000, generator=g))[None]
    one = compute_features(x, cfg)
    blocks = compute_features(x, cfg, block_s=0.4)
    for key in one:
        assert torch.equal(one[key], blocks[key]), key


def test_analyse_harmonics_recovers_amplitudes() -> None:
    cfg = TimbreConfig(n_harmonics=4)
    n = 8000
    x = (0.5 * _sine(250.0, n) + 0.2 * _sine(500.0, n)).float()[None]
    feats = compute_features(x, cfg)
    ctrl = analyse_harmonics(x, feats["f0_filled_hz"], feats["voiced"], cfg)
    a = ctrl["harmonic_amplitudes"][0, 20:-20].mean(0)
    assert abs(float(a[0]) - 0.5) < 0.05 and abs(float(a[1]) - 0.2) < 0.03
    assert float(a[2]) < 0.02


# --- data, checkpoints, training ---------------------------------------------------------------


def test_dataset_is_deterministic_per_index() -> None:
    cfg = TimbreConfig(**TINY)
    audio = torch.randn(8000) * 0.1
    feats = compute_features(audio[None], cfg)
    ds = TimbreDataset(audio, feats, cfg, chunk_s=0.2, n_items=4, seed=1)
    a, b = ds[2], ds[2]
    assert a["audio"].shape == (ds.chunk_samples,) and a["f0_hz"].shape == (ds.chunk_frames + 1,)
    assert torch.equal(a["audio"], b["audio"])
    with pytest.raises(InputError, match="at least"):
        TimbreDataset(audio[:1000], feats, cfg, chunk_s=0.2)
    short = compute_features(audio[None, :1], cfg)  # one sample: finite features
    assert short["loudness_db"].shape == (1, cfg.n_frames(1))
    assert bool(torch.isfinite(short["f0_hz"]).all())


def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    model = TimbreModel(TimbreConfig(**TINY)).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, extra={"note": 1})
    loaded, extra = load_checkpoint(path)
    assert extra == {"note": 1}
    f0, ld = torch.full((1, 26), 220.0), torch.full((1, 26), -30.0)
    with torch.no_grad():
        a = model(f0, ld, n_samples=1600, generator=torch.Generator().manual_seed(0))
        b = loaded(f0, ld, n_samples=1600, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    payload = torch.load(path, weights_only=True)
    for key, value, match in (("model_type", "diffdsp.match.mlp", "model type"),
                              ("version", MODEL_VERSION + 1, "version")):
        bad = dict(payload, **{key: value})
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(InputError, match=match):
            load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a diffdsp checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    assert payload["model_type"] == MODEL_TYPE


def test_lightning_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    cfg = TimbreConfig(**TINY)
    module = TimbreLightning(cfg, learning_rate=1e-2)
    n = 4000
    x = _sine(220.0, n, amp=0.3).float()[None].repeat(2, 1)
    feats = compute_features(x, cfg)
    batch = {"audio": x, "f0_hz": feats["f0_filled_hz"], "loudness_db": feats["loudness_db"]}
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = module._step(batch)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_ddp_two_process_gloo_smoke(tmp_path: Path) -> None:
    """Lightning DDP, 2 CPU processes on gloo: both ranks train, rank 0 keeps the model."""
    out = run_ddp_script(tmp_path, f"""
        from diffdsp.train.timbre import (TimbreConfig, TimbreDataset, TimbreLightning,
                                          compute_features, train_model)
        cfg = TimbreConfig(**{TINY!r})
        g = torch.Generator().manual_seed(0)
        audio = 0.3 * torch.sin(2 * torch.pi * 220 * torch.arange(8000) / 16000)
        feats = compute_features(audio[None], cfg)
        ds = TimbreDataset(audio, feats, cfg, chunk_s=0.2, n_items=8, seed=0)
        module = TimbreLightning(cfg)
        trainer = train_model(module, ds, max_steps=2, batch_size=2, devices=2, strategy="ddp")
        rank = trainer.global_rank
        ok = trainer.world_size == 2 and trainer.global_step == 2
        ok = ok and all(torch.isfinite(p).all() for p in module.parameters())
        print(f"RANK{{rank}} OK={{ok}}", flush=True)
    """, timeout_s=240)
    assert "RANK0 OK=True" in out and "RANK1 OK=True" in out, out[-3000:]
