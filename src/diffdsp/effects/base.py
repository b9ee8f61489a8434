"""The effect interface: physical-unit keyword arguments or one normalised parameter tensor.

Every effect is a thin ``nn.Module`` around a pure function of ``diffdsp.functional``. It declares
``param_ranges`` (an ordered ``dict[str, ParamRange]``) and can be driven two ways:

- ``fx(x, threshold_db=-20.0, ratio=4.0)``: physical units, scalars or ``(batch,)`` tensors;
- ``fx(x, params)``: one ``(batch, n_params)`` tensor in [0, 1], columns in ``param_ranges``
  order, mapped through the ranges (the interface networks and optimisers use).

Both can be combined (keywords override columns); missing values take the range defaults.
:class:`EffectChain` runs effects in series and concatenates their parameter vectors.

References:
    Steinmetz et al., "Style transfer of audio effects with differentiable signal processing",
    JAES 2022 (normalised control parameters, sigmoid outputs denormalised per range);
    dasp-pytorch ``Processor.process_normalized``; pedalboard ``Pedalboard([...])``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import (
    InputError,
    check_finite,
    check_sample_rate,
    check_tensor,
    finite_checks_enabled,
)
from diffdsp.params import ParamRange

__all__ = ["Effect", "EffectChain", "check_audio"]


def check_audio(x: Any, name: str = "x") -> Tensor:
    """Check an audio batch ``(batch, channels, time)``."""
    return check_tensor(x, name, ndim=3)


class Effect(nn.Module):
    """Base class of every audio effect (see the module docstring for the two interfaces).

    Subclasses set ``param_ranges`` in ``__init__`` and implement :meth:`process`, which takes
    physical values as ``(batch, 1)`` tensors (they broadcast over ``(batch, channels)``).

    Args:
        sample_rate: sample rate in Hz.
    """

    param_ranges: dict[str, ParamRange]

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = check_sample_rate(sample_rate)
        self.param_ranges = {}

    @property
    def n_params(self) -> int:
        """Number of normalised parameters (columns of ``params``)."""
        return len(self.param_ranges)

    @property
    def param_names(self) -> list[str]:
        """Parameter names in column order."""
        return list(self.param_ranges)

    def denormalise(self, params: Tensor) -> dict[str, Tensor]:
        """``(batch, n_params)`` in [0, 1] -> physical ``{name: (batch,)}``."""
        if params.ndim != 2 or params.shape[-1] != self.n_params:
            raise InputError(
                f"{type(self).__name__} params must have shape (batch, {self.n_params}) "
                f"({', '.join(self.param_ranges)}), got {tuple(params.shape)}"
            )
        items = enumerate(self.param_ranges.items())
        return {k: r.denormalise(params[:, i]) for i, (k, r) in items}

    def normalise(self, values: Mapping[str, Tensor | float], batch: int = 1) -> Tensor:
        """Physical values (missing ones take defaults) -> ``(batch, n_params)`` in [0, 1]."""
        unknown = set(values) - set(self.param_ranges)
        if unknown:
            raise InputError(
                f"{type(self).__name__} has no parameter(s) {sorted(unknown)}; "
                f"expected {list(self.param_ranges)}"
            )
        cols = []
        for k, r in self.param_ranges.items():
            v = torch.as_tensor(values.get(k, r.default_value), dtype=torch.get_default_dtype())
            cols.append(torch.broadcast_to(r.normalise(v.to(torch.float64)).float(), (batch,)))
        return torch.stack(cols, dim=-1)

    def default_params(self, batch: int = 1, *, like: Tensor | None = None) -> Tensor:
        """Normalised defaults ``(batch, n_params)``."""
        p = self.normalise({}, batch)
        return p if like is None else p.to(dtype=like.dtype, device=like.device)

    def resolve(
        self, x: Tensor, params: Tensor | None, physical: Mapping[str, Any]
    ) -> dict[str, Tensor]:
        """Physical values as ``(batch, 1)`` tensors on ``x``'s device and dtype."""
        unknown = set(physical) - set(self.param_ranges)
        if unknown:
            raise InputError(
                f"{type(self).__name__} has no parameter(s) {sorted(unknown)}; "
                f"expected {list(self.param_ranges)}"
            )
        batch = x.shape[0]
        values: dict[str, Tensor] = {}
        if params is not None:
            check_tensor(params, "params", ndim=2)
            if params.shape[0] not in (1, batch):
                raise InputError(
                    f"params batch {params.shape[0]} does not match the audio batch {batch}"
                )
            if finite_checks_enabled():  # a host sync: only with DIFFDSP_CHECK_FINITE=1
                for i, k in enumerate(self.param_ranges):
                    check_finite(params[:, i], f"{type(self).__name__} parameter {k}")
            values = self.denormalise(params.to(x.dtype))
        out: dict[str, Tensor] = {}
        for k, r in self.param_ranges.items():
            if k in physical:
                v = torch.as_tensor(physical[k], dtype=x.dtype, device=x.device)
                if not bool(torch.isfinite(v).all()):  # a design parameter: always checked
                    raise InputError(f"{type(self).__name__}: {k} must be finite, got "
                                     f"{physical[k]!r}")
            elif k in values:
                v = values[k]
            else:
                v = torch.tensor(r.default_value, dtype=x.dtype, device=x.device)
            if v.ndim > 1:
                raise InputError(f"{k} must be a scalar or a (batch,) tensor, got {tuple(v.shape)}")
            try:
                out[k] = torch.broadcast_to(v.reshape(-1), (batch,))[:, None]
            except RuntimeError as exc:
                raise InputError(
                    f"{k} has {v.numel()} values, expected 1 or the batch size {batch}"
                ) from exc
        return out

    def forward(self, x: Tensor, params: Tensor | None = None, **physical: Any) -> Tensor:
        """Process ``x`` ``(batch, channels, time)``; see the class docstring."""
        check_audio(x)
        return self.process(x, **self.resolve(x, params, physical))

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Process with physical values ``(batch, 1)`` (implemented by subclasses)."""
        raise NotImplementedError

    def describe(self, params: Tensor | None = None, **physical: Any) -> list[dict[str, float]]:
        """Human-readable physical settings, one dict per batch item (for ``params.json``)."""
        dummy = torch.zeros(
            1 if params is None else params.shape[0], 1, 1,
            dtype=torch.float64 if params is None else params.dtype,
        )
        vals = self.resolve(dummy, params, physical)
        return [{k: float(v[b, 0]) for k, v in vals.items()} for b in range(dummy.shape[0])]


class EffectChain(Effect):
    """Effects in series; the parameter vector is the concatenation of theirs.

    Parameter names are ``"<effect>.<param>"``. Call with a ``(batch, n_params)`` tensor, or with
    ``settings={"compressor": {"ratio": 4.0}}`` in physical units (others take defaults).

    Args:
        effects: a sequence of effects (named ``"0"``, ``"1"``, ...) or an ordered mapping
            name -> effect. All must share one sample rate.

    Examples:
        >>> from diffdsp.effects.gain import Gain
        >>> from diffdsp.effects.dynamics import Compressor
        >>> chain = EffectChain({"comp": Compressor(44100), "gain": Gain(44100)})
        >>> chain.n_params, chain.param_names[-1]
        (7, 'gain.gain_db')
        >>> y = chain(torch.zeros(2, 1, 100), chain.default_params(2))
        >>> y.shape
        torch.Size([2, 1, 100])
    """

    def __init__(self, effects: Iterable[Effect] | Mapping[str, Effect]) -> None:
        items = list(effects.items()) if isinstance(effects, Mapping) else [
            (str(i), fx) for i, fx in enumerate(effects)
        ]
        if not items:
            raise InputError("EffectChain needs at least one effect, got none")
        rates = {fx.sample_rate for _, fx in items}
        if len(rates) != 1:
            raise InputError(
                f"all effects of a chain must share one sample rate, got {sorted(rates)}"
            )
        super().__init__(rates.pop())
        self.effects = nn.ModuleDict(OrderedDict(items))
        self.param_ranges = {
            f"{name}.{k}": r for name, fx in items for k, r in fx.param_ranges.items()
        }

    def slices(self) -> dict[str, slice]:
        """Column slice of each effect in the concatenated parameter vector."""
        out = {}
        start = 0
        for name, fx in self.effects.items():
            n = len(getattr(fx, "param_ranges"))  # noqa: B009 (ModuleDict items are typed Module)
            out[name] = slice(start, start + n)
            start += n
        return out

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        params: Tensor | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Tensor:
        """Run the chain on ``(batch, channels, time)``."""
        check_audio(x)
        settings = dict(settings or {})
        unknown = set(settings) - set(self.effects)
        if unknown:
            raise InputError(f"unknown effect(s) {sorted(unknown)}; chain has {list(self.effects)}")
        if params is not None and (params.ndim != 2 or params.shape[-1] != self.n_params):
            raise InputError(
                f"chain params must have shape (batch, {self.n_params}), got {tuple(params.shape)}"
            )
        y = x
        for name, sl in self.slices().items():
            fx = self.effects[name]
            p = None if params is None else params[:, sl]
            y = fx(y, p, **dict(settings.get(name, {})))
        return y

    def split(self, params: Tensor) -> dict[str, Tensor]:
        """The per-effect normalised parameter blocks."""
        return {name: params[:, sl] for name, sl in self.slices().items()}

    def describe_chain(self, params: Tensor) -> list[dict[str, dict[str, float]]]:
        """Physical settings per batch item, nested by effect name."""
        out: list[dict[str, dict[str, float]]] = [{} for _ in range(params.shape[0])]
        for name, block in self.split(params).items():
            for b, d in enumerate(self.effects[name].describe(block)):  # type: ignore[operator]
                out[b][name] = d
        return out
