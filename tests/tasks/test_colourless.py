"""The colourless stage: ``optimise_colourless`` (density cap, restarts) and its flatness."""

from __future__ import annotations

import math

import pytest
import torch

from diffdsp.functional.fdn import fdn_transfer
from diffdsp.losses.acoustic import sparsity_loss
from diffdsp.lti import FDN, FrequencyGrid, build_fdn
from diffdsp.tasks.reverb import (
    COLOURLESS_LOG_GAMMA,
    colourless_flatness,
    optimise_colourless,
    spectral_flatness,
)


def _net(seed: int = 0) -> FDN:
    return build_fdn(48000, n_lines=4, nfft=2**10, attenuation="none", seed=seed,
                     delay_range_ms=(4.0, 12.0))


def _sparsity(fdn: FDN) -> float:
    with torch.no_grad():
        return float(sparsity_loss(fdn.matrix.static_matrix().double()))


def test_colourless_flatness_matches_a_dense_frequency_grid() -> None:
    # the same damping as a 2^17-point grid, whose bins sample the band as densely (but half a
    # bin apart): the resonances are a few bins wide, hence 1 % between the two samplings
    fdn = build_fdn(48000, n_lines=4, nfft=2**10, attenuation="none", seed=0)
    grid = FrequencyGrid(2**17, 48000, alias_decay_db=30.0, dtype=torch.float64)
    assert grid.log_gamma == pytest.approx(COLOURLESS_LOG_GAMMA, rel=1e-12)
    with torch.no_grad():
        h = fdn_transfer(grid.delay(fdn.delays.samples.double()),
                         feedback_matrix=fdn.matrix.static_matrix().double(),
                         input_gains=fdn.input_gains.double(),
                         output_gains=fdn.output_gains.double())
    ref = float(spectral_flatness(h))
    assert colourless_flatness(fdn) == pytest.approx(ref, rel=1e-2)
    assert 0.0 < ref < 1.0


def test_optimise_colourless_raises_the_flatness() -> None:
    fdn = _net()
    before = colourless_flatness(fdn)
    info = optimise_colourless(fdn, steps=60, n_freqs=1024, lr=0.05, objective="log_flatness",
                               sparsity_weight=0.0)
    assert info["flatness"] == pytest.approx(colourless_flatness(fdn), rel=1e-12)
    assert info["flatness"] > 1.2 * before
    assert info["sparsity"] == pytest.approx(_sparsity(fdn), abs=1e-5)


@pytest.mark.parametrize("cap", [0.05, 0.2])
def test_max_sparsity_is_a_constraint_on_the_result(cap: float) -> None:
    # without the cap the flatness objective alone makes the matrix sparser than this
    free = _net(1)
    optimise_colourless(free, steps=80, n_freqs=1024, lr=0.1, objective="log_flatness",
                        sparsity_weight=0.0)
    capped = _net(1)
    info = optimise_colourless(capped, steps=80, n_freqs=1024, lr=0.1, objective="log_flatness",
                               sparsity_weight=0.0, max_sparsity=cap)
    assert _sparsity(capped) <= cap + 1e-6
    assert info["sparsity"] <= cap + 1e-6
    assert _sparsity(free) > 0.05  # the cap 0.05 binds


def test_max_sparsity_below_the_start_is_enforced_after_few_steps() -> None:
    fdn = _net(2)
    cap = max(0.0, _sparsity(fdn) - 0.05)
    optimise_colourless(fdn, steps=2, n_freqs=256, lr=1e-4, objective="log_flatness",
                        sparsity_weight=0.0, max_sparsity=cap)
    assert _sparsity(fdn) <= cap + 1e-6


def test_restarts_keep_the_flattest_run() -> None:
    kw = dict(steps=30, n_freqs=512, lr=0.1, objective="log_flatness", sparsity_weight=0.0,
              seed=3)
    single = _net()
    one = optimise_colourless(single, **kw)  # type: ignore[arg-type]
    multi = _net()
    many = optimise_colourless(multi, restarts=3, **kw)  # type: ignore[arg-type]
    flat = many["restart_flatness"]
    assert len(flat) == 3
    assert flat[0] == pytest.approx(one["flatness"], rel=1e-9)  # run 0 = the single run
    assert many["flatness"] == pytest.approx(max(flat), rel=1e-12)
    assert colourless_flatness(multi) == pytest.approx(max(flat), rel=1e-9)
    assert colourless_flatness(multi) >= colourless_flatness(single) - 1e-12
    assert all(math.isfinite(v) for v in flat)


@pytest.mark.parametrize("kw,name", [({"max_sparsity": 1.5}, "max_sparsity"),
                                     ({"max_sparsity": -0.1}, "max_sparsity"),
                                     ({"restarts": 0}, "restarts"),
                                     ({"restarts": 2, "checkpoint_path": "x.pt"},
                                      "checkpoint_path"),
                                     ({"objective": "l2"}, "objective")])
def test_bad_arguments_name_the_parameter(kw: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        optimise_colourless(_net(), steps=1, n_freqs=64, **kw)


def test_densifying_step_leaves_the_stationary_points_of_the_l1_sparsity() -> None:
    # descending the L1 sparsity itself from this start stalls at 0.152 (entries +-0.653 /
    # +-0.271, a stationary point); the quartic descent reaches any cap above 0
    from diffdsp.params import orthogonal_map
    from diffdsp.tasks.reverb import _enforce_max_sparsity

    raw = torch.randn(4, 4, generator=torch.Generator().manual_seed(1),
                      dtype=torch.float64).requires_grad_()
    opt = torch.optim.Adam([raw], lr=5e-3)
    for _ in range(1500):
        s = sparsity_loss(orthogonal_map(raw))
        opt.zero_grad()
        s.backward()
        opt.step()
    assert float(s.detach()) > 0.15  # stalled
    fdn = _net()
    with torch.no_grad():
        fdn.matrix.raw.copy_(raw.detach())
    _enforce_max_sparsity(fdn, 0.02)
    assert _sparsity(fdn) <= 0.02 + 1e-6
    a = fdn.matrix.static_matrix().detach().double()
    assert torch.allclose(a @ a.T, torch.eye(4, dtype=torch.float64), atol=1e-5)
