"""Frequency-sampled LTI systems (FLAMO-style) and feedback delay networks.

``FrequencyGrid`` is the one shared context (nfft, gamma, sample rate, dtype); the systems
(``Gain``, ``Matrix``, ``Delay``, ``FIR``, ``Biquad``, ``PEQ``, ``GEQ``, ``SVF``) and composites
(``Series``, ``Parallel``, ``Feedback``, ``Shell``) are evaluated on it; ``FDN`` builds a complete
reverberator that renders by frequency sampling or by the exact time recursion.
"""

from diffdsp.lti.core import Feedback, FrequencyGrid, LTISystem, Parallel, Series, Shell
from diffdsp.lti.fdn import (
    FDN,
    GEQAttenuation,
    HomogeneousAttenuation,
    LowpassAttenuation,
    build_fdn,
)
from diffdsp.lti.systems import (
    FIR,
    GEQ,
    PEQ,
    SVF,
    Biquad,
    Delay,
    Gain,
    Matrix,
    octave_centers_hz,
)

__all__ = [
    "FDN",
    "FIR",
    "GEQ",
    "PEQ",
    "SVF",
    "Biquad",
    "Delay",
    "Feedback",
    "FrequencyGrid",
    "GEQAttenuation",
    "Gain",
    "HomogeneousAttenuation",
    "LTISystem",
    "LowpassAttenuation",
    "Matrix",
    "Parallel",
    "Series",
    "Shell",
    "build_fdn",
    "octave_centers_hz",
]
