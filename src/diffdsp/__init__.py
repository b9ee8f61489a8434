"""diffdsp: differentiable audio signal processing in PyTorch.

Filters, oscillators, envelopes, effects and feedback delay networks whose outputs are
differentiable with respect to every parameter; the losses that make optimising them work; and
the tasks built on them (reverb fitting, sound matching, style transfer, phase alignment).

``import diffdsp`` needs only torch, numpy and numba; audio I/O, the command line, plots and
training are extras (``[io]``, ``[cli]``, ``[train]``) imported when used.
"""

import os as _os

if "NUMBA_THREADING_LAYER" not in _os.environ:
    # numba's OpenMP layer leaves its workers spinning after a parallel kernel, starving torch's
    # own threads (a GRU backward measured 6x slower right after an MR-STFT loss call); the
    # workqueue layer does not. Users can still choose with NUMBA_THREADING_LAYER.
    import numba as _numba

    setattr(_numba.config, "THREADING_LAYER", "workqueue")  # noqa: B010 - untyped config

from diffdsp import diagnostics, effects, functional, losses, lti, optim, params, synth
from diffdsp._numerics import amp_to_db, db_to_amp, safe_divide, safe_log
from diffdsp._validation import InputError
from diffdsp.optim import FitResult, fit
from diffdsp.params import ParamRange

__version__ = "0.1.0"

__all__ = [
    "FitResult",
    "InputError",
    "ParamRange",
    "__version__",
    "amp_to_db",
    "db_to_amp",
    "diagnostics",
    "effects",
    "fit",
    "functional",
    "losses",
    "lti",
    "optim",
    "params",
    "safe_divide",
    "safe_log",
    "synth",
]
