"""Loss diagnostics: loss landscapes, gradient-direction tests and loss sensitivity.

A DDSP pipeline lives or dies by its loss; the way to choose one is to *look* at it. Three tools,
generic over any renderer and any per-item loss:

- :func:`landscape`: the loss over a 1-D or 2-D grid of named parameters (physical units, spaced
  through their :class:`~diffdsp.params.ParamRange`) around a reference setting, optionally under K
  random perturbations of other parameters (median and quartiles over the K runs). All grid points
  of all runs are rendered in batches (``batch_size`` points per call), never one call per point.
  The result carries the argmin, its distance from the true value (in units and in grid steps),
  the number of local minima (2-D and along each axis) and a roughness figure.
- :func:`gradient_direction`: the protocol of DiffMoog Table 1 (after Turian & Henry): for a
  random target and a random prediction, does the loss rank a deliberately perturbed prediction
  (moved *away* from the target by a given distance) as worse than the prediction, and does the
  gradient at the prediction point towards the target? Accuracy per distance over many trials.
- :func:`sensitivity`: the tutorial's analysis on real data: loss values between signals of the
  same condition versus different conditions, normalised to mean 0 / std 1 per loss, medians per
  condition pair, and the probability that a different-condition pair scores higher than a
  same-condition pair (AUC).

Conventions: ``render(params) -> audio`` takes a dict ``name -> Tensor (batch, ...)`` (scalar
parameters arrive as ``(batch,)``) and returns ``(batch, ..., time)``; ``loss(pred, target) ->
(batch,)`` returns one value per item (extra trailing dimensions are averaged). Both run on
whatever device the tensors are on (``device=``), so the same call runs on a GPU.

References:
    G. Dal Santo et al., "Building robust audio DDSP pipelines: the case of artificial
    reverberation" (tutorial, 2025), "Choosing the right loss"; G. Dal Santo et al., "Similarity
    metrics for late reverberation", Asilomar 2024; N. Uzrad et al., "DiffMoog", 2024, Table 1 and
    Fig. 7; J. Turian & M. Henry, "I'm sorry for your loss: spectrally-based audio distances are
    bad at pitch", ICBINB @ NeurIPS 2020.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp._validation import InputError, check_choice, check_int
from diffdsp.params import ParamRange

__all__ = [
    "GradientDirectionResult",
    "LandscapeResult",
    "LossFn",
    "Render",
    "SensitivityResult",
    "count_local_minima",
    "count_significant_minima",
    "gradient_direction",
    "grid_values",
    "landscape",
    "landscapes",
    "minima_depths",
    "roughness",
    "sensitivity",
]

#: ``render(params) -> (batch, ..., time)``; scalar parameters arrive as ``(batch,)`` tensors.
Render = Callable[[dict[str, Tensor]], Tensor]
#: ``loss(pred, target) -> (batch,)``: one value per item.
LossFn = Callable[[Tensor, Tensor], Tensor]
#: ``perturb(k, generator) -> {name: value}``: the values of other parameters for repeat ``k``.
Perturb = Callable[[int, torch.Generator], Mapping[str, float | Tensor]]

_REL_RANGE_TOL = 1e-9


# --------------------------------------------------------------------------- grids


def grid_values(
    param_range: ParamRange,
    n: int,
    *,
    low: float | None = None,
    high: float | None = None,
    name: str = "parameter",
) -> Tensor:
    """``n`` values spaced uniformly in the range's normalised space (geometric for ``log``).

    Args:
        param_range: the parameter's range (its scale sets the spacing).
        n: number of points (>= 2).
        low: first value (default ``param_range.min``), physical units.
        high: last value (default ``param_range.max``), physical units.
        name: parameter name for error messages.

    Returns:
        float64 values ``(n,)`` in physical units, increasing, from ``low`` to ``high``.

    Examples:
        >>> r = ParamRange(100.0, 10000.0, "log", unit="Hz")
        >>> grid_values(r, 3).round().tolist()
        [100.0, 1000.0, 10000.0]

    References:
        Dal Santo et al., tutorial 2025 (loss landscapes on physical-unit grids).
    """
    n = check_int(n, f"number of grid points for {name!r}", minimum=2)
    lo = param_range.min if low is None else float(low)
    hi = param_range.max if high is None else float(high)
    _check_inside(param_range, torch.tensor([lo, hi], dtype=torch.float64), name)
    if not hi > lo:
        raise InputError(f"grid for {name!r} needs low < high, got low={lo!r}, high={hi!r}")
    u0 = float(param_range.normalise(torch.tensor(lo, dtype=torch.float64)))
    u1 = float(param_range.normalise(torch.tensor(hi, dtype=torch.float64)))
    u = torch.linspace(u0, u1, n, dtype=torch.float64)
    values = param_range.denormalise(u)
    values[0], values[-1] = lo, hi  # exact end points
    return values


def _check_inside(param_range: ParamRange, values: Tensor, name: str) -> None:
    tol = _REL_RANGE_TOL * (param_range.max - param_range.min)
    bad = (values < param_range.min - tol) | (values > param_range.max + tol) | ~values.isfinite()
    if bool(bad.any()):
        v = float(values[bad][0])
        raise InputError(
            f"grid for {name!r} must lie in its range [{param_range.min}, {param_range.max}]"
            f"{' ' + param_range.unit if param_range.unit else ''}, got {v!r}"
        )


def _resolve_grid(
    grid: Mapping[str, Tensor | Sequence[float] | int], ranges: Mapping[str, ParamRange]
) -> list[tuple[str, Tensor]]:
    if not isinstance(grid, Mapping) or not 1 <= len(grid) <= 2:
        n = len(grid) if isinstance(grid, Mapping) else type(grid).__name__
        raise InputError(f"grid must map 1 or 2 parameter names to values, got {n}")
    axes = []
    for name, spec in grid.items():
        if name not in ranges:
            raise InputError(f"unknown parameter {name!r} in grid; known: {sorted(ranges)}")
        r = ranges[name]
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            if int(spec) < 2:
                raise InputError(f"grid for {name!r} needs at least 2 points, got {int(spec)}")
            values = grid_values(r, int(spec), name=name)
        else:
            values = torch.as_tensor(spec, dtype=torch.float64).detach().cpu().flatten()
            if values.numel() < 2:
                raise InputError(
                    f"grid for {name!r} needs at least 2 points, got {values.numel()}"
                )
            _check_inside(r, values, name)
            if not bool((values[1:] > values[:-1]).all()):
                raise InputError(f"grid for {name!r} must be strictly increasing, got "
                                 f"{values.tolist()[:8]}")
        axes.append((name, values))
    return axes


def _check_names(values: Mapping[str, Any] | None, ranges: Mapping[str, ParamRange],
                 what: str) -> dict[str, Any]:
    values = dict(values or {})
    for name in values:
        if name not in ranges:
            raise InputError(f"unknown parameter {name!r} in {what}; known: {sorted(ranges)}")
    return values


def _axis_scale(r: ParamRange, values: Tensor) -> str:
    return "log" if r.scale == "log" and bool((values > 0).all()) else "linear"


def _position(value: float, values: Tensor, scale: str) -> float:
    """Fractional grid index of ``value`` (extrapolated linearly beyond the ends)."""
    v = values.numpy()
    x = float(value)
    if scale == "log":
        v, x = np.log(v), math.log(x) if x > 0 else -math.inf
    if x <= v[0]:
        return float((x - v[0]) / (v[1] - v[0]))
    if x >= v[-1]:
        return float(len(v) - 1 + (x - v[-1]) / (v[-1] - v[-2]))
    return float(np.interp(x, v, np.arange(len(v), dtype=np.float64)))


# --------------------------------------------------------------------------- shape analysis


def _neighbour_offsets(ndim: int) -> list[tuple[int, ...]]:
    if ndim == 1:
        return [(-1,), (1,)]
    return [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]


def count_local_minima(values: Tensor | np.ndarray, *, tol: float | None = None) -> int:
    """Number of local minima of a 1-D or 2-D landscape (plateaus count once).

    A local minimum is a connected set of points with equal values (neighbours within ``tol``
    of each other, chained; 8-neighbour connectivity in 2-D) none of whose neighbours outside
    the set is lower. Points on the border count (their missing neighbours are ignored).
    Non-finite values are treated as ``+inf``.

    Args:
        values: ``(n,)`` or ``(n1, n2)`` loss values.
        tol: absolute tolerance for "equal"; default ``1e-6 * (max - min)`` of the finite values
            (float32 rounding must not create minima on flat regions).

    Returns:
        The number of local minima.

    Examples:
        >>> count_local_minima(torch.tensor([3.0, 1.0, 2.0, 0.5, 4.0]))
        2
        >>> count_local_minima(torch.tensor([[1.0, 1.0], [1.0, 1.0]]))  # one flat plateau
        1

    References:
        Dal Santo et al., tutorial 2025 ("is the landscape smooth enough?").
    """
    v = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(
        values, dtype=np.float64)
    if v.ndim not in (1, 2) or v.size == 0:
        raise InputError(f"values must be a non-empty 1-D or 2-D array, got shape {v.shape}")
    v = np.where(np.isfinite(v), v, np.inf)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return 0
    if tol is None:
        tol = 1e-6 * float(finite.max() - finite.min())
    shape = v.shape
    offsets = _neighbour_offsets(v.ndim)
    # Fast path: points strictly lower than all neighbours are minima on their own; points with a
    # strictly lower neighbour never are. Only ties need the plateau flood fill.
    padded = np.pad(v, 1, constant_values=np.inf)
    lower = np.zeros(shape, dtype=bool)  # has a neighbour lower by more than tol
    tie = np.zeros(shape, dtype=bool)  # has a neighbour equal within tol
    with np.errstate(invalid="ignore"):  # inf - inf at non-finite points: never a tie
        for off in offsets:
            sl = tuple(slice(1 + o, 1 + o + s) for o, s in zip(off, shape, strict=True))
            nb = padded[sl]
            lower |= nb < v - tol
            tie |= np.abs(nb - v) <= tol
    count = int((~lower & ~tie & np.isfinite(v)).sum())
    # Plateaus: flood-fill each component of tied points (neighbours within tol of each other,
    # chained, so a ramp of sub-tol steps is one plateau, not one per tol); it is a minimum
    # when no neighbour outside it is lower (a neighbour outside differs by more than tol).
    seen = np.zeros(shape, dtype=bool)
    for start in zip(*np.nonzero(tie & np.isfinite(v)), strict=True):
        if seen[start]:
            continue
        stack = [start]
        seen[start] = True
        members = []
        while stack:
            p = stack.pop()
            members.append(p)
            for off in offsets:
                q = tuple(a + b for a, b in zip(p, off, strict=True))
                if all(0 <= c < s for c, s in zip(q, shape, strict=True)) and not seen[q] \
                        and abs(v[q] - v[p]) <= tol:
                    seen[q] = True
                    stack.append(q)
        inside = set(members)
        is_min = True
        for p in members:
            for off in offsets:
                q = tuple(a + b for a, b in zip(p, off, strict=True))
                if all(0 <= c < s for c, s in zip(q, shape, strict=True)) and q not in inside \
                        and v[q] < v[p]:
                    is_min = False
                    break
            if not is_min:
                break
        count += int(is_min)
    return count


def minima_depths(values: Tensor | np.ndarray, *, tol: float | None = None) -> list[float]:
    """Basin depth (persistence) of every local minimum, relative to the landscape's range.

    Sublevel-set persistence (0-dimensional, 8-neighbour connectivity in 2-D): sweep the points
    from the lowest value up, growing basins; when two basins meet at a saddle of value ``s``,
    the one with the higher bottom ``b`` ends, and ``s - b`` is its depth: how far one must
    climb out of it before reaching a lower minimum. The lowest basin's depth is the whole
    range (``max - min``), so it scores 1. Depths are divided by the range of the finite values,
    so the figure does not depend on the loss's scale and the *same* threshold can be applied
    to every loss. Depths at or below ``tol`` (float rounding on flat regions) are dropped.

    Args:
        values: ``(n,)`` or ``(n1, n2)`` loss values (non-finite values are walls: ``+inf``).
        tol: absolute tolerance; default ``1e-6 * (max - min)`` as in
            :func:`count_local_minima`.

    Returns:
        Relative depths in (0, 1], largest first (one entry per basin; the first is 1).

    Examples:
        >>> minima_depths(torch.tensor([3.0, 1.0, 2.0, 0.0, 4.0]))   # bump of 1 over a min of 1
        [1.0, 0.25]
        >>> minima_depths(torch.tensor([2.0, 1.0, 1.0, 1.0, 2.0]))   # a plateau is one basin
        [1.0]

    References:
        Edelsbrunner, Letscher & Zomorodian, "Topological persistence and simplification",
        Discrete Comput. Geom. 28, 2002 (0-dimensional persistence of sublevel sets).
    """
    v = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(
        values, dtype=np.float64)
    if v.ndim not in (1, 2) or v.size == 0:
        raise InputError(f"values must be a non-empty 1-D or 2-D array, got shape {v.shape}")
    shape = v.shape
    flat = np.where(np.isfinite(v), v, np.inf).ravel()
    finite_idx = np.flatnonzero(np.isfinite(flat))
    if finite_idx.size == 0:
        return []
    lo, hi = float(flat[finite_idx].min()), float(flat[finite_idx].max())
    span = hi - lo
    if tol is None:
        tol = 1e-6 * span
    # neighbour table (n, 8 or 2), -1 outside the grid
    idx = np.arange(flat.size).reshape(shape)
    padded = np.pad(idx, 1, constant_values=-1)
    nbrs = np.stack([padded[tuple(slice(1 + o, 1 + o + n) for o, n in zip(off, shape,
                                                                          strict=True))].ravel()
                     for off in _neighbour_offsets(len(shape))], -1).tolist()
    vals = flat.tolist()
    parent = [-1] * flat.size  # -1: not yet swept
    birth: dict[int, float] = {}
    depths: list[float] = []

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    for i in finite_idx[np.argsort(flat[finite_idx], kind="stable")].tolist():
        roots = {find(j) for j in nbrs[i] if j >= 0 and parent[j] >= 0}
        if not roots:
            parent[i] = i
            birth[i] = vals[i]
            continue
        keep = min(roots, key=lambda r: (birth[r], r))
        parent[i] = keep
        for r in roots - {keep}:
            depths.append(vals[i] - birth.pop(r))
            parent[r] = keep
    # basins never merged (the global one, and any walled off by non-finite values)
    depths.extend(hi - b for b in birth.values())
    if span <= 0:  # flat: each region walled off by non-finite values is one basin
        return [1.0] * len(birth)
    return sorted((d / span for d in depths if d > tol), reverse=True)


def count_significant_minima(
    values: Tensor | np.ndarray, *, min_depth: float = 0.01, tol: float | None = None
) -> int:
    """Number of local minima whose basin depth exceeds ``min_depth`` of the landscape's range.

    The robust count used to compare losses: a strict neighbourhood count
    (:func:`count_local_minima`) counts every ripple of a plateau as a minimum, however shallow;
    this one counts only basins one must climb out of by more than ``min_depth * (max - min)``
    (:func:`minima_depths`). The global minimum always counts.

    Args:
        values: ``(n,)`` or ``(n1, n2)`` loss values.
        min_depth: threshold as a fraction of the range of the finite values, in [0, 1).
        tol: see :func:`minima_depths`.

    Returns:
        The number of minima deeper than the threshold (0 only if no value is finite).

    Examples:
        >>> v = torch.tensor([3.0, 1.0, 1.02, 1.0, 2.0, 0.0, 4.0])
        >>> count_local_minima(v), count_significant_minima(v, min_depth=0.01)
        (3, 2)

    References:
        Edelsbrunner et al., 2002 (persistence); Dal Santo et al., tutorial 2025 (smoothness).
    """
    if not 0.0 <= float(min_depth) < 1.0:
        raise InputError(f"min_depth must be in [0, 1), got {min_depth!r}")
    return sum(1 for d in minima_depths(values, tol=tol) if d > min_depth)


def roughness(values: Tensor | np.ndarray, *, axis: int = -1) -> float:
    """Excess variation of a landscape along one axis, relative to its range (0 = unimodal).

    For each line along ``axis`` the total variation minus the variation a unimodal line with
    the same end points and minimum would have (``(first - min) + (last - min)``), summed over
    lines and divided by ``(number of lines) * (max - min)`` of the whole landscape. A smooth
    bowl scores 0; every extra bump adds twice its height.

    Args:
        values: ``(n,)`` or ``(n1, n2)`` loss values (non-finite values are ignored).
        axis: the axis along which lines run.

    Returns:
        The roughness (>= 0).

    Examples:
        >>> roughness(torch.tensor([3.0, 1.0, 2.0]))
        0.0
        >>> roughness(torch.tensor([0.0, 1.0, 0.0, 1.0]))   # TV 3, unimodal part 1, range 1
        2.0

    References:
        Dal Santo et al., tutorial 2025 (smoothness of the loss landscape).
    """
    v = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(
        values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :] if axis in (0, -1) else v[:, None]
        axis = -1
    v = np.moveaxis(v, axis, -1)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return 0.0
    span = float(finite.max() - finite.min())
    if span <= 0:
        return 0.0
    total = 0.0
    for line in v.reshape(-1, v.shape[-1]):
        line = line[np.isfinite(line)]
        if line.size < 3:
            continue
        tv = float(np.abs(np.diff(line)).sum())
        total += tv - float(line[0] - line.min()) - float(line[-1] - line.min())
    return max(0.0, total / (v.reshape(-1, v.shape[-1]).shape[0] * span))


# --------------------------------------------------------------------------- landscape


@dataclass
class LandscapeResult:
    """A loss landscape over one or two parameters (see :func:`landscape`).

    Attributes:
        names: parameter names of the axes.
        axes: grid values per axis, physical units.
        units: unit label per axis.
        scales: ``"linear"`` or ``"log"`` spacing per axis.
        loss: ``(n1,)`` or ``(n1, n2)``: median over the K runs (the single run when K = 1).
        runs: ``(K, n1[, n2])`` loss of every run.
        q25, q75: quartiles over the runs (``None`` when K = 1).
        truth: true value per axis (physical units), or ``None`` when unknown.
        argmin: value per axis at the lowest finite median loss (``None`` if none is finite).
        argmin_index: grid index of the argmin.
        argmin_error: ``argmin - truth`` per axis, physical units.
        argmin_steps: ``argmin - truth`` per axis in grid steps (on the axis's spacing).
        local_minima: number of local minima of the median landscape (8-neighbourhood in 2-D,
            strict: every ripple counts, however shallow).
        significant_minima: number of minima of the median landscape whose basin depth exceeds
            ``min_depth`` of its range (:func:`count_significant_minima`): the robust count.
        min_depth: the threshold of ``significant_minima`` (fraction of the range).
        minima_depths: relative basin depths of all minima of the median landscape, largest
            first (:func:`minima_depths`; the global minimum is 1).
        local_minima_per_axis: mean number of 1-D local minima along lines parallel to each axis.
        local_minima_runs: number of local minima of each run's landscape.
        significant_minima_runs: ``significant_minima`` of each run's landscape.
        roughness: :func:`roughness` along each axis.
        n_nonfinite: grid points (over all runs) where the loss was NaN or infinite.
        seconds: wall time.
        settings: what the landscape was computed with (loss name, reference, K, ...).
    """

    names: list[str]
    axes: list[list[float]]
    units: list[str]
    scales: list[str]
    loss: Tensor
    runs: Tensor
    q25: Tensor | None
    q75: Tensor | None
    truth: dict[str, float | None]
    argmin: dict[str, float] | None
    argmin_index: list[int] | None
    argmin_error: dict[str, float] | None
    argmin_steps: dict[str, float] | None
    local_minima: int
    local_minima_per_axis: dict[str, float]
    local_minima_runs: list[int]
    roughness: dict[str, float]
    n_nonfinite: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    significant_minima: int = 0
    min_depth: float = 0.01
    minima_depths: list[float] = field(default_factory=list)
    significant_minima_runs: list[int] = field(default_factory=list)

    @property
    def argmin_within_one_step(self) -> bool | None:
        """Whether the argmin lies within one grid step of the truth on every axis."""
        if self.argmin_steps is None or any(t is None for t in self.truth.values()):
            return None
        return all(abs(s) <= 1.0 + 1e-6 for s in self.argmin_steps.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``landscape.json`` (non-finite losses become ``None``)."""

        def arr(t: Tensor | None) -> Any:
            if t is None:
                return None
            a = t.detach().cpu().double().numpy()
            return np.where(np.isfinite(a), a, np.nan).tolist()

        def clean(x: Any) -> Any:
            if isinstance(x, float):
                return x if math.isfinite(x) else None
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        return {
            "names": list(self.names),
            "axes": [list(a) for a in self.axes],
            "units": list(self.units),
            "scales": list(self.scales),
            "loss": clean(arr(self.loss)),
            "q25": clean(arr(self.q25)),
            "q75": clean(arr(self.q75)),
            "runs": clean(arr(self.runs)) if self.runs.shape[0] > 1 else None,
            "truth": dict(self.truth),
            "argmin": self.argmin,
            "argmin_index": self.argmin_index,
            "argmin_error": self.argmin_error,
            "argmin_steps": self.argmin_steps,
            "argmin_within_one_step": self.argmin_within_one_step,
            "local_minima": self.local_minima,
            "local_minima_per_axis": dict(self.local_minima_per_axis),
            "local_minima_runs": list(self.local_minima_runs),
            "significant_minima": self.significant_minima,
            "min_depth": self.min_depth,
            "minima_depths": [round(d, 6) for d in self.minima_depths[:50]],
            "significant_minima_runs": list(self.significant_minima_runs),
            "roughness": dict(self.roughness),
            "n_nonfinite": self.n_nonfinite,
            "seconds": round(self.seconds, 4),
            "settings": dict(self.settings),
        }


def _per_item(out: Tensor, batch: int) -> Tensor:
    if out.ndim == 0 or out.shape[0] != batch:
        raise InputError(
            f"loss must return one value per item, shape ({batch},), got {tuple(out.shape)}"
        )
    return out.reshape(batch, -1).mean(-1) if out.ndim > 1 else out


def _match_target(target: Tensor, pred: Tensor) -> Tensor:
    if target.ndim == pred.ndim - 1:
        target = target.unsqueeze(0)
    if target.ndim != pred.ndim or target.shape[0] not in (1, pred.shape[0]) \
            or target.shape[1:] != pred.shape[1:]:
        raise InputError(
            f"target must have the rendered item shape {tuple(pred.shape[1:])} (optionally with "
            f"a leading 1), got {tuple(target.shape)}"
        )
    return target.expand_as(pred)


def _lines_minima(v: np.ndarray, axis: int, tol: float) -> float:
    lines = np.moveaxis(v, axis, -1).reshape(-1, v.shape[axis])
    return float(np.mean([count_local_minima(line, tol=tol) for line in lines]))


def landscape(
    render: Render,
    loss: LossFn,
    target: Tensor,
    grid: Mapping[str, Tensor | Sequence[float] | int],
    **options: Any,
) -> LandscapeResult:
    """Loss over a 1-D or 2-D grid of named parameters, rendered in batches.

    Every grid point (of every perturbation run) is one item of a batched ``render`` call: the
    grid parameters vary, the others take their ``reference`` value (or the range default), and
    ``perturb(k, generator)`` may override or add values for run ``k`` (scalars, or tensors such
    as a feedback matrix, which arrive with a leading batch dimension). The loss of each rendered
    item against ``target`` gives the landscape; with ``repeats = K > 1`` the median over runs is
    the landscape and the quartiles its spread.

    Args:
        render: ``render(params) -> (batch, ..., time)``; ``params`` maps names to
            ``(batch, ...)`` tensors of ``dtype`` on ``device``.
        loss: ``loss(pred, target) -> (batch,)``, one value per item.
        target: the target ``(..., time)`` (the shape of one rendered item, optionally with a
            leading 1); broadcast over the batch.
        grid: ``name -> values`` (increasing, inside the range) or ``name -> n`` (``n`` points
            spanning the range on its scale, :func:`grid_values`); one or two names.
        ranges: ``name -> ParamRange`` of every parameter ``render`` understands.
        reference: values of the non-grid parameters (default: each range's default).
        truth: true value of each grid parameter, for the argmin distance (default: the
            ``reference`` value when given).
        perturb: ``perturb(k, generator) -> {name: value}`` for run ``k`` (seeded generator).
        repeats: K, the number of runs (> 1 needs ``perturb``).
        batch_size: grid points per ``render`` call.
        seed: seed of the perturbation generator.
        dtype: dtype of the parameter tensors.
        device: device of the parameter tensors (default: ``target``'s).
        minima_tol: tolerance of :func:`count_local_minima` and :func:`minima_depths`.
        min_depth: basin-depth threshold of ``significant_minima`` (fraction of the range,
            default 0.01).
        progress: ``progress(done, total)`` after each batch.
        settings: extra entries recorded in ``result.settings``.

    The keyword arguments (``ranges`` is required) are those of :func:`landscapes`, which
    computes several losses on the same renders; this is its one-loss form.

    Returns:
        A :class:`LandscapeResult`.

    Raises:
        InputError: unknown parameter names, grids outside a range, fewer than 2 points on an
            axis, more than 2 axes, a loss that does not return one value per item.

    Shape:
        ``target``: ``(..., time)``; ``result.loss``: ``(n1,)`` or ``(n1, n2)``.

    Examples:
        >>> r = {"gain": ParamRange(0.0, 2.0)}
        >>> x = torch.randn(256)
        >>> res = landscape(lambda p: p["gain"][:, None] * x, lambda a, b: ((a - b) ** 2).mean(-1),
        ...                 0.5 * x, {"gain": 21}, ranges=r, truth={"gain": 0.5})
        >>> res.argmin, res.local_minima, res.argmin_within_one_step
        ({'gain': 0.5}, 1, True)

    References:
        Dal Santo et al., tutorial 2025, "Choosing the right loss" (landscapes over T60 at DC x
        crossover frequency, 25 feedback-matrix perturbations); Uzrad et al., DiffMoog, Fig. 7.
    """
    return landscapes(render, {"loss": loss}, target, grid, **options)["loss"]


def landscapes(
    render: Render,
    losses: Mapping[str, LossFn],
    target: Tensor,
    grid: Mapping[str, Tensor | Sequence[float] | int],
    *,
    ranges: Mapping[str, ParamRange],
    reference: Mapping[str, float | Tensor] | None = None,
    truth: Mapping[str, float] | None = None,
    perturb: Perturb | None = None,
    repeats: int = 1,
    batch_size: int = 256,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    minima_tol: float | None = None,
    min_depth: float = 0.01,
    progress: Callable[[int, int], None] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, LandscapeResult]:
    """Landscapes of several losses at once: each batch is rendered once and scored by all.

    Same arguments as :func:`landscape` (documented there), with ``losses``
    (``name -> loss``) instead of ``loss``; returns ``name -> LandscapeResult`` (``seconds`` is
    the shared wall time).

    Examples:
        >>> r = {"gain": ParamRange(0.0, 2.0)}
        >>> x = torch.randn(64)
        >>> res = landscapes(lambda p: p["gain"][:, None] * x,
        ...                  {"l2": lambda a, b: ((a - b) ** 2).mean(-1),
        ...                   "l1": lambda a, b: (a - b).abs().mean(-1)}, x, {"gain": 5}, ranges=r)
        >>> {k: v.argmin for k, v in res.items()}
        {'l2': {'gain': 1.0}, 'l1': {'gain': 1.0}}

    References:
        Dal Santo et al., tutorial 2025, "Choosing the right loss".
    """
    t0 = time.perf_counter()
    axes = _resolve_grid(grid, ranges)
    ref = _check_names(reference, ranges, "reference")
    tru = _check_names(truth, ranges, "truth")
    for name in tru:
        if name not in dict(axes):
            raise InputError(f"truth given for {name!r}, which is not a grid axis "
                             f"({[a for a, _ in axes]})")
    repeats = check_int(repeats, "repeats", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not 0.0 <= float(min_depth) < 1.0:
        raise InputError(f"min_depth must be in [0, 1), got {min_depth!r}")
    if repeats > 1 and perturb is None:
        raise InputError(f"repeats={repeats} needs a perturb function (K random runs)")
    dev = torch.device(device) if device is not None else target.device
    target = target.detach().to(dev)
    names = [a for a, _ in axes]
    sizes = [int(v.numel()) for _, v in axes]
    n_points = int(np.prod(sizes))
    # per-run values of perturbed parameters, stacked (K, ...)
    gen = torch.Generator().manual_seed(int(seed))
    runs_vals: dict[str, list[Tensor]] = {}
    for k in range(repeats):
        vals = dict(perturb(k, gen)) if perturb is not None else {}
        if k > 0 and set(vals) != set(runs_vals):
            raise InputError("perturb must return the same names for every run, got "
                             f"{sorted(vals)} and {sorted(runs_vals)}")
        for name, v in vals.items():
            if name in names:
                raise InputError(f"perturb must not set the grid parameter {name!r}")
            runs_vals.setdefault(name, []).append(torch.as_tensor(v, dtype=dtype))
    stacked = {n: torch.stack(v).to(dev) for n, v in runs_vals.items()}
    fixed = {n: float(torch.as_tensor(ref.get(n, r.default_value)))
             for n, r in ranges.items() if n not in names and n not in stacked}
    axis_t = [v.to(dev, dtype) for _, v in axes]
    total = repeats * n_points
    if not losses:
        raise InputError("losses must name at least one loss, got none")
    outs = {name: torch.empty(total, dtype=torch.float64) for name in losses}
    with torch.no_grad():
        for start in range(0, total, batch_size):
            idx = torch.arange(start, min(total, start + batch_size), device=dev)
            b = int(idx.numel())
            run = torch.div(idx, n_points, rounding_mode="floor")
            point = idx - run * n_points
            params: dict[str, Tensor] = {}
            if len(axes) == 1:
                params[names[0]] = axis_t[0][point]
            else:
                params[names[0]] = axis_t[0][torch.div(point, sizes[1], rounding_mode="floor")]
                params[names[1]] = axis_t[1][point % sizes[1]]
            for n, v in fixed.items():
                params[n] = torch.full((b,), v, dtype=dtype, device=dev)
            for n, v in stacked.items():
                params[n] = v[run]
            pred = render(params)
            if pred.shape[0] != b:
                raise InputError(f"render must return (batch, ..., time) with batch {b}, got "
                                 f"{tuple(pred.shape)}")
            tgt = _match_target(target.to(pred.dtype), pred)
            for name, fn in losses.items():
                val = _per_item(fn(pred, tgt), b)
                outs[name][start:start + b] = val.detach().to("cpu", torch.float64)
            if progress is not None:
                progress(start + b, total)
    seconds = time.perf_counter() - t0
    scales = [_axis_scale(ranges[n], vals) for n, vals in axes]
    truth_out: dict[str, float | None] = {
        n: (float(tru[n]) if n in tru else float(torch.as_tensor(ref[n])) if n in ref else None)
        for n in names
    }
    info = {"repeats": repeats, "batch_size": batch_size, "seed": seed,
            "reference": {n: float(x) for n, x in fixed.items()},
            "perturbed": sorted(stacked), "dtype": str(dtype).replace("torch.", ""),
            "device": str(dev), "losses_evaluated_together": list(losses)}
    info.update(dict(settings or {}))
    return {name: _summarise(outs[name].reshape(repeats, *sizes), axes, ranges, scales,
                             truth_out, minima_tol, float(min_depth), seconds,
                             {"loss": name, **info})
            for name in losses}


def _summarise(
    runs: Tensor, axes: list[tuple[str, Tensor]], ranges: Mapping[str, ParamRange],
    scales: list[str], truth_out: dict[str, float | None], minima_tol: float | None,
    min_depth: float, seconds: float, info: dict[str, Any],
) -> LandscapeResult:
    names = [a for a, _ in axes]
    repeats = int(runs.shape[0])
    nonfinite = int((~runs.isfinite()).sum())
    if repeats > 1:
        clean = torch.where(runs.isfinite(), runs, torch.tensor(float("nan"), dtype=runs.dtype))
        med = clean.nanquantile(0.5, dim=0)
        q25: Tensor | None = clean.nanquantile(0.25, dim=0)
        q75: Tensor | None = clean.nanquantile(0.75, dim=0)
    else:
        med, q25, q75 = runs[0], None, None
    vmed = med.numpy()
    finite = vmed[np.isfinite(vmed)]
    tol = minima_tol
    if tol is None:
        tol = 1e-6 * float(finite.max() - finite.min()) if finite.size else 0.0
    argmin = argmin_index = argmin_error = argmin_steps = None
    if finite.size:
        flat = int(np.argmin(np.where(np.isfinite(vmed), vmed, np.inf)))
        index = [int(i) for i in np.unravel_index(flat, vmed.shape)]
        argmin_index = index
        argmin = {n: float(vals[i]) for (n, vals), i in zip(axes, index, strict=True)}
        if all(t is not None for t in truth_out.values()):
            argmin_error = {n: argmin[n] - float(truth_out[n]) for n in names}  # type: ignore[arg-type]
            argmin_steps = {
                n: float(i) - _position(float(truth_out[n]), vals, s)  # type: ignore[arg-type]
                for (n, vals), i, s in zip(axes, index, scales, strict=True)
            }
    per_axis = {n: _lines_minima(vmed, i, tol) for i, n in enumerate(names)}
    rough = {n: roughness(vmed, axis=i) for i, n in enumerate(names)}
    minima_runs = [count_local_minima(runs[k], tol=minima_tol) for k in range(repeats)]
    depths = minima_depths(vmed, tol=tol)
    sig_runs = [count_significant_minima(runs[k], min_depth=min_depth, tol=minima_tol)
                for k in range(repeats)]
    return LandscapeResult(
        names=names, axes=[vals.tolist() for _, vals in axes],
        units=[ranges[n].unit for n in names], scales=scales, loss=med, runs=runs, q25=q25,
        q75=q75, truth=truth_out, argmin=argmin, argmin_index=argmin_index,
        argmin_error=argmin_error, argmin_steps=argmin_steps,
        local_minima=count_local_minima(vmed, tol=tol), local_minima_per_axis=per_axis,
        local_minima_runs=minima_runs, roughness=rough, n_nonfinite=nonfinite,
        seconds=seconds, settings=info,
        significant_minima=sum(1 for d in depths if d > min_depth), min_depth=min_depth,
        minima_depths=depths, significant_minima_runs=sig_runs,
    )


# --------------------------------------------------------------------------- gradient direction


@dataclass
class GradientDirectionResult:
    """Accuracy of a loss's sense of direction along one parameter (see
    :func:`gradient_direction`).

    Attributes:
        param: the parameter tested.
        distances: the distances (``distance_unit``); ``0`` is the gradient-sign test (DiffMoog's
            ``f +- epsilon`` column).
        distance_unit: ``"cents"``, ``"normalised"`` or ``"linear"``.
        accuracy: fraction of correct trials per distance.
        ci95: Wilson 95 % interval per distance.
        correct: number of correct trials per distance.
        ties: trials where the two losses (or the gradient) were exactly equal (counted wrong).
        trials: number of trials.
        seconds: wall time.
        settings: the protocol's settings.
    """

    param: str
    distances: list[float]
    distance_unit: str
    accuracy: list[float]
    ci95: list[tuple[float, float]]
    correct: list[int]
    ties: list[int]
    trials: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def accuracy_at(self, distance: float) -> float:
        """Accuracy at one of the tested distances."""
        for d, a in zip(self.distances, self.accuracy, strict=True):
            if math.isclose(d, float(distance)):
                return a
        raise InputError(f"distance {distance!r} was not tested; tested: {self.distances}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "param": self.param, "distances": list(self.distances),
            "distance_unit": self.distance_unit, "accuracy": list(self.accuracy),
            "ci95": [list(c) for c in self.ci95], "correct": list(self.correct),
            "ties": list(self.ties), "trials": self.trials, "seconds": round(self.seconds, 4),
            "settings": dict(self.settings),
        }


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def _move(value: Tensor, distance: float, direction: Tensor, unit: str, r: ParamRange) -> Tensor:
    """Move ``value`` by ``distance`` (unit) in ``direction`` (+1/-1)."""
    if unit == "cents":
        return value * torch.pow(2.0, direction * distance / 1200.0)
    if unit == "normalised":
        return r.denormalise(r.normalise(value) + direction * distance)
    return value + direction * distance


def gradient_direction(
    render: Render,
    loss: LossFn,
    param: str,
    distances: Sequence[float],
    trials: int = 1000,
    *,
    ranges: Mapping[str, ParamRange],
    reference: Mapping[str, float | Tensor] | None = None,
    randomise: Sequence[str] = (),
    independent: Sequence[str] = (),
    target_range: tuple[float, float] | None = None,
    distance_unit: str = "cents",
    prediction_offset: tuple[float, float] | None = None,
    batch_size: int = 100,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> GradientDirectionResult:
    """Does the loss point towards the target? DiffMoog Table 1 protocol, accuracy per distance.

    Each trial draws a target value ``t`` and a prediction ``p`` of ``param`` (uniform in the
    range's normalised space, or in ``target_range``; or ``p`` at a random offset from ``t`` when
    ``prediction_offset`` is given), with the other parameters at ``reference`` (those named in
    ``randomise`` drawn per trial, shared by target and prediction; those named in
    ``independent`` drawn per trial separately for the target and the prediction, e.g. an
    oscillator's initial phase). Then, per distance ``d``:

    - ``d > 0``: a perturbed prediction ``q`` is ``p`` moved by ``d`` *away* from ``t``; the trial
      is correct when ``loss(render(q), render(t)) > loss(render(p), render(t))`` (the loss ranks
      the farther prediction as worse);
    - ``d == 0`` (DiffMoog's ``f +- epsilon``): correct when the gradient of the loss with respect
      to ``param`` at ``p`` has the sign of ``p - t`` (a descent step moves towards ``t``).

    Draws with a ``q`` outside the range are redrawn, so every rendered value lies in the range.
    All trials are rendered in batches of ``batch_size``. Ties count as wrong.

    Args:
        render: ``render(params) -> (batch, ..., time)`` (differentiable in ``param`` for the
            gradient test).
        loss: ``loss(pred, target) -> (batch,)``.
        param: the parameter tested (e.g. ``"freq_hz"``).
        distances: distances in ``distance_unit`` (``0`` = gradient test), e.g. ``[0, 300, 600]``.
        trials: number of trials (the paper: 1000).
        ranges: ``name -> ParamRange``.
        reference: values of the other parameters (default: range defaults).
        randomise: other parameters drawn uniformly (normalised space) per trial, shared by
            target and prediction.
        independent: other parameters drawn uniformly per trial, independently for the target
            and for the prediction (a perturbed prediction keeps the prediction's draw).
        target_range: ``(low, high)`` inside the range of ``param``: the interval targets are
            drawn from, uniformly in normalised space (default: the whole range; predictions
            may leave it but not the range).
        distance_unit: ``"cents"`` (multiplicative, for frequencies), ``"normalised"`` (in the
            range's [0, 1] space) or ``"linear"`` (physical units).
        prediction_offset: ``(low, high)``: ``|p - t|`` drawn uniformly in this interval of
            ``distance_unit`` with a random sign; ``None``: ``p`` drawn like ``t``.
        batch_size: trials per render call.
        seed: seed of every draw.
        dtype: dtype of the parameter tensors.
        device: device of the parameter tensors.
        progress: ``progress(done, total)`` after each batch.

    Returns:
        A :class:`GradientDirectionResult`.

    Raises:
        InputError: unknown names, an empty or negative distance list, ``trials < 1``.

    Examples:
        >>> r = {"gain": ParamRange(0.1, 2.0)}
        >>> x = torch.randn(128)
        >>> res = gradient_direction(lambda p: p["gain"][:, None] * x,
        ...     lambda a, b: ((a - b) ** 2).mean(-1), "gain", [0.0, 0.1], 200, ranges=r,
        ...     distance_unit="linear")
        >>> res.accuracy
        [1.0, 1.0]

    References:
        Uzrad et al., DiffMoog (2024), Table 1; Turian & Henry, ICBINB @ NeurIPS 2020.
    """
    t_start = time.perf_counter()
    if param not in ranges:
        raise InputError(f"unknown parameter {param!r}; known: {sorted(ranges)}")
    ref = _check_names(reference, ranges, "reference")
    for what, names in (("randomise", randomise), ("independent", independent)):
        for name in names:
            if name not in ranges or name == param:
                raise InputError(f"{what}: {name!r} must be another known parameter; known: "
                                 f"{sorted(set(ranges) - {param})}")
    if set(randomise) & set(independent):
        raise InputError(f"a parameter cannot be both in randomise and independent, got "
                         f"{sorted(set(randomise) & set(independent))}")
    check_choice(distance_unit, "distance_unit", ("cents", "normalised", "linear"))
    dist = [float(d) for d in distances]
    if not dist or any(not math.isfinite(d) or d < 0 for d in dist):
        raise InputError(f"distances must be a non-empty list of values >= 0, got {dist}")
    trials = check_int(trials, "trials", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if distance_unit == "cents" and ranges[param].min <= 0:
        raise InputError(f"distance_unit 'cents' needs a positive range for {param!r}, got "
                         f"[{ranges[param].min}, {ranges[param].max}]")
    if prediction_offset is not None:
        lo_off, hi_off = (float(v) for v in prediction_offset)
        if not 0 < lo_off <= hi_off:
            raise InputError(f"prediction_offset must be (low, high) with 0 < low <= high, got "
                             f"{prediction_offset}")
    r = ranges[param]
    u_lo, u_hi = 0.0, 1.0
    if target_range is not None:
        t_lo, t_hi = (float(v) for v in target_range)
        _check_inside(r, torch.tensor([t_lo, t_hi], dtype=torch.float64), param)
        if not t_lo < t_hi:
            raise InputError(f"target_range must be (low, high) with low < high, got "
                             f"{target_range}")
        u_lo, u_hi = (float(r.normalise(torch.tensor(v, dtype=torch.float64)))
                      for v in (t_lo, t_hi))
    gen = torch.Generator().manual_seed(int(seed))
    f64 = torch.float64

    def uniform(n: int) -> Tensor:
        if target_range is None:
            return r.denormalise(torch.rand(n, generator=gen, dtype=f64))
        return r.denormalise(u_lo + (u_hi - u_lo) * torch.rand(n, generator=gen, dtype=f64))

    def draw(n: int) -> tuple[Tensor, Tensor]:
        t = uniform(n)
        if prediction_offset is None:
            p = uniform(n)
        else:
            mag = lo_off + (hi_off - lo_off) * torch.rand(n, generator=gen, dtype=f64)
            sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).to(f64)
            p = _move(t, 1.0, sign * mag, distance_unit, r)
        return t, p

    def valid(t: Tensor, p: Tensor) -> Tensor:
        ok = (p != t) & (p >= r.min) & (p <= r.max)
        away = torch.sign(p - t)
        for d in dist:
            if d > 0:
                q = _move(p, d, away, distance_unit, r)
                ok &= (q >= r.min) & (q <= r.max) & q.isfinite()
        return ok

    ts, ps = [], []
    have = 0
    for _ in range(1000):
        t, p = draw(max(64, 2 * (trials - have)))
        ok = valid(t, p)
        ts.append(t[ok])
        ps.append(p[ok])
        have += int(ok.sum())
        if have >= trials:
            break
    if have < trials:
        raise InputError(f"cannot draw trials with every perturbation inside the range of "
                         f"{param!r} [{r.min}, {r.max}] for distances {dist} {distance_unit}")
    t_all = torch.cat(ts)[:trials]
    p_all = torch.cat(ps)[:trials]
    others = {n: (r_o.denormalise(torch.rand(trials, generator=gen, dtype=f64)) if n in randomise
                  else torch.full((trials,), float(torch.as_tensor(ref.get(n, r_o.default_value))),
                                  dtype=f64))
              for n, r_o in ranges.items() if n != param and n not in independent}
    # independent draws: [target side, prediction side]
    indep = {n: [ranges[n].denormalise(torch.rand(trials, generator=gen, dtype=f64))
                 for _ in range(2)] for n in independent}
    correct = [0] * len(dist)
    ties = [0] * len(dist)
    dev = torch.device(device)
    for start in range(0, trials, batch_size):
        sl = slice(start, min(trials, start + batch_size))
        t, p = t_all[sl], p_all[sl]
        b = int(t.numel())
        common = {n: v[sl].to(dev, dtype) for n, v in others.items()}
        common_t = {**common, **{n: v[0][sl].to(dev, dtype) for n, v in indep.items()}}
        common = {**common, **{n: v[1][sl].to(dev, dtype) for n, v in indep.items()}}
        away = torch.sign(p - t)
        with torch.no_grad():
            target = render({**common_t, param: t.to(dev, dtype)}).detach()
        need_grad = any(d == 0 for d in dist)
        pv = p.to(dev, dtype).requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            loss_p = _per_item(loss(render({**common, param: pv}), target), b)
            if need_grad:
                if not loss_p.requires_grad:
                    raise InputError(f"the gradient test (distance 0) needs a render and loss "
                                     f"differentiable in {param!r}; the loss has no gradient")
                (grad,) = torch.autograd.grad(loss_p.sum(), pv, allow_unused=True)
                if grad is None:
                    grad = torch.zeros_like(pv)
        loss_p = loss_p.detach().to("cpu", f64)
        for i, d in enumerate(dist):
            if d == 0:
                g = grad.detach().to("cpu", f64)
                score = g * away
            else:
                q = _move(p, d, away, distance_unit, r)
                with torch.no_grad():
                    loss_q = _per_item(loss(render({**common, param: q.to(dev, dtype)}), target), b)
                score = loss_q.detach().to("cpu", f64) - loss_p
            correct[i] += int((score > 0).sum())
            ties[i] += int((score == 0).sum())
        if progress is not None:
            progress(sl.stop, trials)
    acc = [c / trials for c in correct]
    return GradientDirectionResult(
        param=param, distances=dist, distance_unit=distance_unit, accuracy=acc,
        ci95=[_wilson(c, trials) for c in correct], correct=correct, ties=ties, trials=trials,
        seconds=time.perf_counter() - t_start,
        settings={"seed": seed, "randomise": list(randomise), "independent": list(independent),
                  "target_range": list(target_range) if target_range else None,
                  "prediction_offset": list(prediction_offset) if prediction_offset else None,
                  "reference": {n: float(v[0]) for n, v in others.items() if n not in randomise},
                  "range": r.to_dict(), "dtype": str(dtype).replace("torch.", "")},
    )


# --------------------------------------------------------------------------- sensitivity


@dataclass
class SensitivityResult:
    """How well each loss separates conditions (see :func:`sensitivity`).

    Attributes:
        groups: condition labels, in order of first appearance.
        medians: per loss, ``(G, G)`` medians of the normalised loss over pairs of signals from
            conditions ``(i, j)`` (both orders pooled; the diagonal is same-condition pairs).
        auc: per loss, P(a different-condition pair scores higher than a same-condition pair)
            (ties count half); 0.5 = no separation, 1 = perfect.
        separation: per loss, median normalised loss of different-condition pairs minus that of
            same-condition pairs.
        by_difference: per loss, median normalised loss per condition difference ``|g_i - g_j|``
            (numeric labels only, else empty).
        spearman: per loss, rank correlation between ``|g_i - g_j|`` and the loss over all pairs
            (numeric labels only, else ``None``).
        n_signals: number of signals.
        n_pairs: number of ordered pairs evaluated.
        seconds: wall time.
    """

    groups: list[Any]
    medians: dict[str, list[list[float | None]]]
    auc: dict[str, float | None]
    separation: dict[str, float | None]
    by_difference: dict[str, dict[float, float]]
    spearman: dict[str, float | None]
    n_signals: int
    n_pairs: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "groups": [g if isinstance(g, (int, float, str)) else str(g) for g in self.groups],
            "medians": self.medians, "auc": self.auc, "separation": self.separation,
            "by_difference": {k: {str(d): m for d, m in v.items()}
                              for k, v in self.by_difference.items()},
            "spearman": self.spearman, "n_signals": self.n_signals, "n_pairs": self.n_pairs,
            "seconds": round(self.seconds, 4),
        }


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(pos > neg) + 0.5 P(pos == neg) (Mann-Whitney)."""
    if pos.size == 0 or neg.size == 0:
        return None
    r = _ranks(np.concatenate([pos, neg]))
    return float((r[:pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def sensitivity(
    losses: Mapping[str, LossFn],
    signals: Tensor | Sequence[Tensor],
    groups: Sequence[Hashable],
    *,
    batch_size: int = 64,
) -> SensitivityResult:
    """Loss values between signals of the same and of different conditions, normalised.

    Every ordered pair ``(i, j), i != j`` is scored with ``loss(signals[i], signals[j])`` (signal
    ``j`` as the target), in batches. Per loss, the values are normalised to mean 0 / std 1 over
    all pairs; then medians per condition pair, the AUC of different- versus same-condition pairs
    and, for numeric condition labels (ordered conditions), the median per condition difference
    and its Spearman correlation. A loss that "captures the parameter changes we want" has a low
    diagonal, an AUC near 1 and a positive correlation.

    Args:
        losses: ``name -> loss(pred, target) -> (batch,)``.
        signals: ``(n, ..., time)`` or a list of n equally shaped tensors.
        groups: n condition labels (numbers for ordered conditions).
        batch_size: pairs per loss call.

    Returns:
        A :class:`SensitivityResult`.

    Raises:
        InputError: fewer than 2 signals, a label count that differs from the signal count, an
            empty ``losses``.

    Examples:
        >>> x = torch.stack([torch.randn(512) * a for a in (1.0, 1.1, 4.0, 4.4)])
        >>> level = lambda a, b: (a.pow(2).mean(-1).log() - b.pow(2).mean(-1).log()).abs()
        >>> res = sensitivity({"level": level}, x, [0, 0, 1, 1])
        >>> res.auc["level"]
        1.0

    References:
        Dal Santo et al., tutorial 2025 and Asilomar 2024 ("Similarity metrics for late
        reverberation": medians of normalised losses per reverberation-condition difference).
    """
    t0 = time.perf_counter()
    x = torch.stack(list(signals)) if not isinstance(signals, Tensor) else signals
    n = int(x.shape[0]) if x.ndim else 0
    if n < 2:
        raise InputError(f"sensitivity needs at least 2 signals, got {n}")
    labels = list(groups)
    if len(labels) != n:
        raise InputError(f"groups must have one label per signal ({n}), got {len(labels)}")
    if not losses:
        raise InputError("losses must name at least one loss, got none")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    names = list(dict.fromkeys(labels))
    gidx = np.array([names.index(g) for g in labels])
    ii, jj = np.nonzero(~np.eye(n, dtype=bool))
    same = gidx[ii] == gidx[jj]
    numeric = all(isinstance(g, (int, float, np.integer, np.floating)) and not isinstance(g, bool)
                  for g in labels)
    diff = np.abs(np.array(labels, dtype=np.float64)[ii] - np.array(labels, dtype=np.float64)[jj]) \
        if numeric else None
    medians: dict[str, list[list[float | None]]] = {}
    auc: dict[str, float | None] = {}
    sep: dict[str, float | None] = {}
    by_diff: dict[str, dict[float, float]] = {}
    rho: dict[str, float | None] = {}
    ti = torch.as_tensor(ii, device=x.device)
    tj = torch.as_tensor(jj, device=x.device)
    for lname, fn in losses.items():
        vals = np.empty(len(ii), dtype=np.float64)
        with torch.no_grad():
            for s in range(0, len(ii), batch_size):
                a, b = ti[s:s + batch_size], tj[s:s + batch_size]
                out = _per_item(fn(x[a], x[b]), int(a.numel()))
                vals[s:s + int(a.numel())] = out.detach().to("cpu", torch.float64).numpy()
        ok = np.isfinite(vals)
        mu = float(vals[ok].mean()) if ok.any() else 0.0
        sd = float(vals[ok].std()) if ok.any() else 0.0
        z = (vals - mu) / sd if sd > 0 else np.zeros_like(vals)
        z = np.where(ok, z, np.nan)
        g = len(names)
        mat: list[list[float | None]] = [[None] * g for _ in range(g)]
        for a_ in range(g):
            for b_ in range(g):
                m = ((gidx[ii] == a_) & (gidx[jj] == b_)) | ((gidx[ii] == b_) & (gidx[jj] == a_))
                m &= ok
                mat[a_][b_] = float(np.median(z[m])) if m.any() else None
        medians[lname] = mat
        auc[lname] = _auc(z[~same & ok], z[same & ok])
        sep[lname] = (float(np.median(z[~same & ok]) - np.median(z[same & ok]))
                      if (~same & ok).any() and (same & ok).any() else None)
        if diff is not None:
            by_diff[lname] = {float(d): float(np.median(z[(diff == d) & ok]))
                              for d in np.unique(diff) if ((diff == d) & ok).any()}
            if ok.sum() > 2 and np.unique(diff[ok]).size > 1 and np.unique(z[ok]).size > 1:
                rho[lname] = float(np.corrcoef(_ranks(diff[ok]), _ranks(z[ok]))[0, 1])
            else:
                rho[lname] = None
        else:
            by_diff[lname] = {}
            rho[lname] = None
    return SensitivityResult(groups=names, medians=medians, auc=auc, separation=sep,
                             by_difference=by_diff, spearman=rho, n_signals=n, n_pairs=len(ii),
                             seconds=time.perf_counter() - t0)
