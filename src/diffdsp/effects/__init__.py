"""Audio effects: thin ``nn.Module`` processors with ``param_ranges`` (see :mod:`.base`).

Import the modules directly, e.g. ``from diffdsp.effects.eq import ParametricEQ`` or
``from diffdsp.effects.base import Effect, EffectChain``; each effect can be driven by physical
keyword arguments or by one normalised ``(batch, n_params)`` tensor.
"""

from diffdsp.effects.base import Effect, EffectChain
from diffdsp.effects.delay import Delay
from diffdsp.effects.distortion import Distortion
from diffdsp.effects.dynamics import Compressor, Expander, Limiter, NoiseGate
from diffdsp.effects.eq import ParametricEQ
from diffdsp.effects.gain import Gain
from diffdsp.effects.reverb import NoiseReverb
from diffdsp.effects.stereo import Pan, StereoWidth

__all__ = [
    "Compressor",
    "Delay",
    "Distortion",
    "Effect",
    "EffectChain",
    "Expander",
    "Gain",
    "Limiter",
    "NoiseGate",
    "NoiseReverb",
    "Pan",
    "ParametricEQ",
    "StereoWidth",
]
