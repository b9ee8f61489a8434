"""reverb fit --resume: a fit stopped mid-run continues from its checkpoint to the same result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffdsp.io import load_audio, save_audio
from diffdsp.tasks import reverb
from tests.cli_helpers import run_cli

KW = dict(n_lines=2, steps=6, colourless_steps=6, calibration_passes=1, time_budget_s=None,
          seed=3, plots=False, checkpoint_every=2)


class Killed(Exception):
    """Stands for a hard kill: unlike Ctrl-C, nothing is saved when it is raised."""


@pytest.fixture(scope="module")
def rir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reverb_resume")
    h = reverb.synthetic_rir(8000, seconds=0.3, t60_s=0.25, seed=1)
    src = d / "rir.wav"
    save_audio(src, h.unsqueeze(0), 8000)
    return src


@pytest.fixture(scope="module")
def reference(rir: Path) -> tuple[dict, torch.Tensor]:
    out = rir.parent / "uninterrupted"
    reverb.fit(rir, out, **KW)  # type: ignore[arg-type]
    return json.loads((out / "fdn.json").read_text()), load_audio(out / "impulse_response.wav")[0]


@pytest.mark.parametrize("stage,step,exc", [("colourless", 3, KeyboardInterrupt),
                                            ("decay", 3, Killed)])
def test_fit_stopped_mid_run_resumes_to_the_same_result(
        rir: Path, reference: tuple[dict, torch.Tensor], stage: str, step: int,
        exc: type[BaseException]) -> None:
    out = rir.parent / f"stopped_{stage}_{step}_{exc.__name__}"

    def stop(st: str, k: int, total: int, loss: float) -> None:
        if st == stage and k == step:
            raise exc

    with pytest.raises(exc):
        reverb.fit(rir, out, progress=stop, **KW)  # type: ignore[arg-type]
    assert (out / "checkpoint.pt").is_file()
    assert not (out / "fdn.json").exists()
    res = reverb.fit(rir, out, resume=True, **KW)  # type: ignore[arg-type]
    assert res.result["settings"]["resumed"] is True
    fdn_ref, wav_ref = reference
    assert json.loads((out / "fdn.json").read_text()) == fdn_ref
    assert torch.equal(load_audio(out / "impulse_response.wav")[0], wav_ref)
    # the resumed decay stage continued, it did not start over
    if stage == "decay":
        ck = torch.load(out / "checkpoint.decay.pt", weights_only=False)
        assert ck["step"] == KW["steps"] and len(ck["losses"]) == KW["steps"]


def test_resume_refuses_a_checkpoint_of_another_fit(rir: Path) -> None:
    out = rir.parent / "other"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["reverb", "fit", rir, "--out", out, "--resume", "--delays", "4",
                            "--quiet"])
    assert code == 2
    assert "checkpoint" in err and len(err.strip().splitlines()) == 1
