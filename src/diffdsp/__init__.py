"""diffdsp: differentiable audio signal processing in PyTorch.

Filters, oscillators, envelopes, effects and feedback delay networks whose outputs are
differentiable with respect to every parameter; the losses that make optimising them work; and
the tasks built on them (reverb fitting, sound matching, style transfer, phase alignment).

``import diffdsp`` needs only torch, numpy and numba; audio I/O, the command line, plots and
training are extras (``[io]``, ``[cli]``, ``[train]``) imported when used.
"""

from diffdsp._numerics import amp_to_db, db_to_amp, safe_divide, safe_log
from diffdsp._validation import InputError
from diffdsp.params import ParamRange

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "ParamRange",
    "__version__",
    "amp_to_db",
    "db_to_amp",
    "safe_divide",
    "safe_log",
]
