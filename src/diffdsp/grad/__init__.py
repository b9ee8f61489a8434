"""Gradient strategies for non-differentiable processors: SPSA (:mod:`.spsa`) and neural proxies
(:mod:`.proxy`).

:func:`make_strategy` selects any of DeepAFx-ST's five strategies (``"autodiff"``, ``"spsa"``,
``"proxy"``, ``"half_hybrid"``, ``"full_hybrid"``) for a processor.
"""

from diffdsp.grad.proxy import STRATEGIES, DiffProcessor, ProxyConfig, ProxyTCN, make_strategy

__all__ = ["STRATEGIES", "DiffProcessor", "ProxyConfig", "ProxyTCN", "make_strategy"]
