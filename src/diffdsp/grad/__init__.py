"""Gradient strategies for non-differentiable processors: SPSA (:mod:`.spsa`) and neural proxies.

Import the submodules directly (``from diffdsp.grad.spsa import spsa``).
"""
