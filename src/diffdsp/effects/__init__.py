"""Audio effects: thin ``nn.Module`` processors with ``param_ranges`` (see :mod:`.base`).

Import the modules directly, e.g. ``from diffdsp.effects.eq import ParametricEQ`` or
``from diffdsp.effects.base import Effect, EffectChain``; each effect can be driven by physical
keyword arguments or by one normalised ``(batch, n_params)`` tensor.
"""
