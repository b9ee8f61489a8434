"""Pure tensor functions: the functional core every module, loss and task is built from.

Import the submodules directly (``from diffdsp.functional import iir``); each holds stateless
functions ``f(x, *, sample_rate, ...)`` on ``(..., time)`` tensors.
"""

from diffdsp.functional import (
    allpass,
    analysis,
    dynamics,
    envelopes,
    fdn,
    filters,
    fir,
    freq,
    iir,
    lpc,
    oscillators,
)

__all__ = [
    "allpass",
    "analysis",
    "dynamics",
    "envelopes",
    "fdn",
    "filters",
    "fir",
    "freq",
    "iir",
    "lpc",
    "oscillators",
]
