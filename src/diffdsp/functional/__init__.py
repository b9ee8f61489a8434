"""Pure tensor functions: the functional core every module, loss and task is built from.

Import the submodules directly (``from diffdsp.functional import iir``); each holds stateless
functions ``f(x, *, sample_rate, ...)`` on ``(..., time)`` tensors.
"""
