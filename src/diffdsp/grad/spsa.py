"""SPSA: gradients of any non-differentiable processor by simultaneous perturbation.

For a processor ``y = h(x, p)`` with ``P`` parameters, one SPSA estimate of the vector-Jacobian
product ``g^T dy/dp`` needs two evaluations, whatever ``P``:

``ghat_i = <g, h(x, p + eps D) - h(x, p - eps D)> / (2 eps D_i)``, ``D_i = +-1`` (Rademacher).

Its expectation is the true gradient (up to O(eps^2)); its variance falls with the number of
averaged perturbations. All perturbations of a batch go through the processor in **one** call
(batch-parallel), so a batched black box runs once per backward pass.

References:
    Spall, "Multivariate stochastic approximation using a simultaneous perturbation gradient
    approximation", IEEE TAC 37(3), 1992. Steinmetz et al., JAES 2022, eq. 2 (SPSA for audio
    effects, eps = 5e-4). Ramírez et al., "Differentiable signal processing with black-box audio
    effects", ICASSP 2021.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp._validation import InputError, check_int, check_tensor

__all__ = ["Processor", "numpy_processor", "spsa", "spsa_gradient"]

#: ``processor(x, params) -> y``: ``x`` ``(batch, ...)``, ``params`` ``(batch, P)``, no autograd.
Processor = Callable[[Tensor, Tensor], Tensor]


def numpy_processor(fn: Callable[..., np.ndarray], *, per_item: bool = False) -> Processor:
    """Wrap a numpy function as a :data:`Processor` (tensors in, tensors out, same device/dtype).

    Args:
        fn: ``fn(x, params) -> y`` on numpy arrays, batched (``per_item=False``) or one item at a
            time (``per_item=True``, e.g. a pedalboard plugin configured from ``params``).
        per_item: call ``fn`` once per batch item.

    Returns:
        A processor ``(Tensor, Tensor) -> Tensor``.

    Examples:
        >>> proc = numpy_processor(lambda x, p: x * p[:, :1])
        >>> proc(torch.ones(2, 3), torch.tensor([[2.0], [3.0]]))
        tensor([[2., 2., 2.],
                [3., 3., 3.]])

    References:
        Ramírez et al., ICASSP 2021 (black-box effects).
    """

    def proc(x: Tensor, params: Tensor) -> Tensor:
        xn = x.detach().cpu().numpy()
        pn = params.detach().cpu().numpy()
        if per_item:
            y = np.stack([np.asarray(fn(xn[b], pn[b])) for b in range(xn.shape[0])])
        else:
            y = np.asarray(fn(xn, pn))
        return torch.as_tensor(y, dtype=x.dtype, device=x.device)

    return proc


def spsa_gradient(
    processor: Processor,
    x: Tensor,
    params: Tensor,
    grad_output: Tensor,
    *,
    epsilon: float = 5e-4,
    n_samples: int = 1,
    bounds: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SPSA estimate of ``grad_output^T d processor(x, params) / d params``.

    Args:
        processor: the black box, ``(x, params) -> y``, batched over the first dimension.
        x: its input ``(batch, ...)``.
        params: its parameters ``(batch, P)``.
        grad_output: the gradient of the loss with respect to the output, shaped like ``y``.
        epsilon: perturbation size (in the units of ``params``).
        n_samples: number of perturbations averaged (all evaluated in one processor call).
        bounds: if given, perturbed parameters are kept in ``[low, high]`` and the actual
            difference ``p+ - p-`` is used in the quotient.
        generator: random generator of the perturbations (CPU).

    Returns:
        The estimated gradient ``(batch, P)``.

    Shape:
        ``params`` ``(batch, P)`` -> ``(batch, P)``.

    Examples:
        >>> proc = lambda x, p: x * p[:, :1] + p[:, 1:]
        >>> x, p = torch.ones(1, 4), torch.tensor([[2.0, 0.5]])
        >>> spsa_gradient(proc, x, p, torch.ones(1, 4), n_samples=8,
        ...               generator=torch.Generator().manual_seed(0))
        tensor([[4., 4.]])

    References:
        Spall 1992; Steinmetz et al., JAES 2022, eq. 2.
    """
    if not epsilon > 0:
        raise InputError(f"epsilon must be > 0, got {epsilon!r}")
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    batch, n_params = params.shape
    signs = torch.randint(0, 2, (n_samples, batch, n_params), generator=generator)
    delta = (signs * 2 - 1).to(dtype=params.dtype, device=params.device)
    p = params.detach()[None]
    p_plus = p + epsilon * delta
    p_minus = p - epsilon * delta
    if bounds is not None:
        p_plus = p_plus.clamp(bounds[0], bounds[1])
        p_minus = p_minus.clamp(bounds[0], bounds[1])
    both = torch.cat([p_plus, p_minus], dim=0).reshape(2 * n_samples * batch, n_params)
    xs = x.detach().expand(2 * n_samples, *x.shape).reshape(2 * n_samples * batch, *x.shape[1:])
    with torch.no_grad():
        y = processor(xs, both)
    y = y.reshape(2, n_samples, batch, *y.shape[1:])
    diff = (y[0] - y[1]) * grad_output[None]
    d = diff.reshape(n_samples, batch, -1).sum(-1)  # directional derivative * 2 eps
    step = (p_plus - p_minus)
    step = torch.where(step.abs() > 0, step, torch.full_like(step, 2 * epsilon))
    return (d[..., None] / step).mean(0)


class _SPSA(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, params: Tensor, processor: Processor, epsilon: float,
                n_samples: int, bounds: tuple[float, float] | None,
                generator: torch.Generator | None) -> Tensor:
        ctx.save_for_backward(x, params)
        ctx.cfg = (processor, epsilon, n_samples, bounds, generator)
        with torch.no_grad():
            return processor(x.detach(), params.detach())

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        x, params = ctx.saved_tensors
        processor, epsilon, n_samples, bounds, generator = ctx.cfg
        grad_p = None
        if ctx.needs_input_grad[1]:
            grad_p = spsa_gradient(processor, x, params, grad_y, epsilon=epsilon,
                                   n_samples=n_samples, bounds=bounds, generator=generator)
        return None, grad_p, None, None, None, None, None


def spsa(
    processor: Processor,
    x: Tensor,
    params: Tensor,
    *,
    epsilon: float = 5e-4,
    n_samples: int = 1,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Run a non-differentiable processor with an SPSA backward pass for its parameters.

    The forward pass is ``processor(x, params)`` exactly; the backward pass estimates the
    parameter gradient by :func:`spsa_gradient` (the input ``x`` gets no gradient).

    Args:
        processor: ``(x, params) -> y`` (numpy black boxes via :func:`numpy_processor`).
        x: input ``(batch, ...)``.
        params: parameters ``(batch, P)`` (normalised [0, 1] parameters by default; see
            ``bounds``).
        epsilon: perturbation size (DeepAFx-ST: 5e-4).
        n_samples: perturbations averaged per backward pass.
        bounds: parameter bounds kept by the perturbations (``None``: unbounded).
        generator: random generator of the perturbations.

    Returns:
        ``processor(x, params)``, differentiable with respect to ``params``.

    Shape:
        ``x`` ``(batch, ...)``, ``params`` ``(batch, P)`` -> the processor's output.

    Examples:
        >>> p = torch.tensor([[0.5]], requires_grad=True)
        >>> y = spsa(lambda x, q: x * q, torch.ones(1, 3), p)
        >>> y.sum().backward()
        >>> round(float(p.grad), 4)
        3.0

    References:
        Spall 1992; Steinmetz et al., JAES 2022, Sec. 1.3.
    """
    check_tensor(x, "x", min_ndim=1)
    check_tensor(params, "params", ndim=2)
    if params.shape[0] != x.shape[0]:
        raise InputError(
            f"params batch {params.shape[0]} does not match the input batch {x.shape[0]}"
        )
    if not epsilon > 0:
        raise InputError(f"epsilon must be > 0, got {epsilon!r}")
    check_int(n_samples, "n_samples", minimum=1)
    return _SPSA.apply(x, params, processor, epsilon, n_samples, bounds, generator)
