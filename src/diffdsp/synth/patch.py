"""Modular synthesizer patch: modules with named ports wired as a DAG, saved and loaded as JSON.

A :class:`Patch` owns named :mod:`~diffdsp.synth.modules` and a list of connections
``("source", "destination.port")``. Its free parameters (every module parameter not listed in
``fixed``) form one ordered vector: a ``(batch, n_params)`` tensor in [0, 1] drives the whole patch
through each parameter's :class:`~diffdsp.params.ParamRange`, which is the interface optimisers and
networks use; :meth:`Patch.render` takes physical values instead. DiffMoog's matrix of cells is one
layout of this DAG (a cell = a module; its fixed/optional connections = edges; an activation
switch = a mixer gain or a VCA level).

JSON layout (``format: "diffdsp.patch/1"``)::

    {"format": "diffdsp.patch/1", "name": "subtractive", "sample_rate": 44100,
     "modules": {"note": {"type": "note"}, "osc": {"type": "vco", "config": {...}}, ...},
     "connections": [["note", "osc.freq"], ["osc", "amp.in"], ...],
     "output": "amp", "fixed": {"osc.ratio": 1.0}, "sampling": {"note.f0_hz": [55, 880]},
     "params": {"note.f0_hz": 220.0, ...}}      # optional physical values (a matched sound)

References:
    Uzrad et al., "DiffMoog: a differentiable modular synthesizer", 2024, Sec. 3.1.
    torchsynth (Turian et al. 2021), ``Voice`` and JSON presets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_int, check_sample_rate
from diffdsp.params import ParamRange
from diffdsp.synth.modules import RenderContext, SynthModule, build_module, module_ports

__all__ = ["FORMAT", "Patch"]

FORMAT = "diffdsp.patch/1"


def _split_dst(dst: str) -> tuple[str, str]:
    if "." not in dst:
        raise InputError(f"connection destination must be 'module.port', got {dst!r}")
    mod, port = dst.split(".", 1)
    return mod, port


class Patch(nn.Module):
    """A DAG of synth modules rendering ``(batch, 1, time)`` audio from normalised parameters.

    Args:
        modules: name -> module (names are identifiers without dots).
        connections: ``(source, "destination.port")`` pairs; several sources into one port add.
        output: name of the module whose output is the patch output.
        sample_rate: sample rate in Hz.
        fixed: physical values of parameters excluded from the vector (``"module.param"``).
        sampling: physical ``(low, high)`` sub-ranges used by :meth:`sample` (datasets).
        name: patch name.

    Examples:
        >>> from diffdsp.synth.modules import Note, VCO
        >>> p = Patch({"note": Note(), "osc": VCO("sine")}, [("note", "osc.freq")], "osc",
        ...           sample_rate=16000, fixed={"osc.ratio": 1.0, "osc.detune_cents": 0.0})
        >>> list(p.param_ranges)
        ['note.f0_hz', 'osc.level']
        >>> p.render({"note.f0_hz": 440.0, "osc.level": 0.5}, n_samples=160).shape
        torch.Size([1, 1, 160])

    References:
        Uzrad et al. 2024 (DiffMoog modular chains).
    """

    def __init__(
        self,
        modules: Mapping[str, SynthModule],
        connections: Sequence[tuple[str, str] | Sequence[str]],
        output: str,
        *,
        sample_rate: int = 44100,
        fixed: Mapping[str, float] | None = None,
        sampling: Mapping[str, Sequence[float]] | None = None,
        name: str = "patch",
    ) -> None:
        super().__init__()
        self.sample_rate = check_sample_rate(sample_rate)
        self.name = str(name)
        for key in modules:
            if not key.isidentifier():
                raise InputError(f"module names must be identifiers without dots, got {key!r}")
        self.synth_modules = nn.ModuleDict(dict(modules))
        self.connections: list[tuple[str, str]] = []
        for c in connections:
            if len(c) != 2:
                raise InputError(f"a connection is (source, 'module.port'), got {c!r}")
            src, dst = str(c[0]), str(c[1])
            if src not in modules:
                raise InputError(f"connection source {src!r} is not a module ({list(modules)})")
            mod, port = _split_dst(dst)
            if mod not in modules:
                raise InputError(
                    f"connection destination {mod!r} is not a module ({list(modules)})"
                )
            ports = module_ports(modules[mod])
            if port not in ports:
                raise InputError(
                    f"module {mod!r} ({modules[mod].type_name}) has no input port {port!r}; "
                    f"expected one of {list(ports)}"
                )
            self.connections.append((src, dst))
        if output not in modules:
            raise InputError(f"output {output!r} is not a module ({list(modules)})")
        self.output = output
        for mname, m in modules.items():
            connected = {_split_dst(d)[1] for _, d in self.connections if _split_dst(d)[0] == mname}
            missing = [p for p in m.required_ports if p not in connected]
            if missing:
                raise InputError(f"module {mname!r} needs its input port(s) {missing} connected")
        self.order = self._toposort()
        all_ranges: dict[str, ParamRange] = {
            f"{m}.{p}": r for m, mod in modules.items() for p, r in mod.param_ranges.items()
        }
        self.fixed: dict[str, float] = {}
        for key, value in (fixed or {}).items():
            if key not in all_ranges:
                raise InputError(f"fixed parameter {key!r} does not exist; expected one of "
                                 f"{list(all_ranges)}")
            self.fixed[key] = float(value)
        self.all_ranges = all_ranges
        self.param_ranges: dict[str, ParamRange] = {
            k: r for k, r in all_ranges.items() if k not in self.fixed
        }
        self.sampling: dict[str, tuple[float, float]] = {}
        for key, lim in (sampling or {}).items():
            if key not in self.param_ranges:
                raise InputError(f"sampling range for unknown free parameter {key!r}")
            lo, hi = float(lim[0]), float(lim[1])
            r = self.param_ranges[key]
            if not r.min <= lo <= hi <= r.max:
                raise InputError(f"sampling range for {key!r} must lie in [{r.min}, {r.max}], "
                                 f"got [{lo}, {hi}]")
            self.sampling[key] = (lo, hi)

    # ------------------------------------------------------------------ structure
    def _toposort(self) -> list[str]:
        names = list(self.synth_modules.keys())
        deps: dict[str, set[str]] = {n: set() for n in names}
        for src, dst in self.connections:
            deps[_split_dst(dst)[0]].add(src)
        order: list[str] = []
        done: set[str] = set()
        while len(order) < len(names):
            ready = [n for n in names if n not in done and deps[n] <= done]
            if not ready:
                cyc = [n for n in names if n not in done]
                raise InputError(f"patch connections form a cycle among {cyc}; feedback must be "
                                 "inside a module")
            for n in ready:
                order.append(n)
                done.add(n)
        return order

    def _module(self, name: str) -> SynthModule:
        m = self.synth_modules[name]
        assert isinstance(m, SynthModule)
        return m

    @property
    def n_params(self) -> int:
        """Number of free parameters (columns of the normalised vector)."""
        return len(self.param_ranges)

    @property
    def param_names(self) -> list[str]:
        """Free parameter names ``"module.param"`` in column order."""
        return list(self.param_ranges)

    # ------------------------------------------------------------------ parameters
    def denormalise(self, u: Tensor) -> dict[str, Tensor]:
        """Map ``(batch, n_params)`` in [0, 1] to physical ``{"module.param": (batch,)}``."""
        if u.ndim != 2 or u.shape[-1] != self.n_params:
            raise InputError(f"normalised parameters must be (batch, {self.n_params}) for "
                             f"{self.param_names}, got shape {tuple(u.shape)}")
        return {k: r.denormalise(u[:, i]) for i, (k, r) in enumerate(self.param_ranges.items())}

    def normalise(self, params: Mapping[str, Tensor | float], *, batch: int | None = None,
                  dtype: torch.dtype | None = None) -> Tensor:
        """Physical values (missing ones take their default) -> ``(batch, n_params)`` in [0, 1]."""
        unknown = [k for k in params if k not in self.all_ranges]
        if unknown:
            raise InputError(
                f"unknown parameters {unknown}; expected names from {self.param_names}"
            )
        dt = dtype or torch.get_default_dtype()
        cols = []
        for k, r in self.param_ranges.items():
            v = params.get(k, r.default_value)
            t = torch.as_tensor(v, dtype=dt) if not isinstance(v, Tensor) else v.to(dt)
            cols.append(r.normalise(t).reshape(-1))
        b = batch or max(c.numel() for c in cols)
        return torch.stack([c.expand(b) for c in cols], -1)

    def sample(self, batch: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None) -> Tensor:
        """Random normalised parameters ``(batch, n_params)``, uniform within ``sampling`` ranges.

        Examples:
            >>> from diffdsp.synth.presets import get_preset
            >>> p = get_preset("subtractive")
            >>> u = p.sample(4, generator=torch.Generator().manual_seed(0))
            >>> u.shape == (4, p.n_params), bool(((u >= 0) & (u <= 1)).all())
            (True, True)
        """
        check_int(batch, "batch", minimum=1)
        dt = dtype or torch.get_default_dtype()
        u = torch.rand(batch, self.n_params, generator=generator, dtype=torch.float64)
        for i, (k, r) in enumerate(self.param_ranges.items()):
            if k in self.sampling:
                lo, hi = self.sampling[k]
                a = float(r.normalise(torch.tensor(lo, dtype=torch.float64)))
                b = float(r.normalise(torch.tensor(hi, dtype=torch.float64)))
                u[:, i] = a + (b - a) * u[:, i]
        return u.to(dt)

    def _full_params(
        self, free: Mapping[str, Tensor], batch: int, like: Tensor
    ) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for key, r in self.all_ranges.items():
            if key in free:
                v = free[key]
            elif key in self.fixed:
                v = torch.tensor(self.fixed[key], dtype=like.dtype, device=like.device)
            else:  # pragma: no cover - free params are always given
                v = torch.tensor(r.default_value, dtype=like.dtype, device=like.device)
            out[key] = v.to(dtype=like.dtype, device=like.device).expand(batch)
        return out

    # ------------------------------------------------------------------ rendering
    def forward(
        self,
        u: Tensor,
        *,
        n_samples: int,
        note_s: float | Tensor | None = None,
        generator: torch.Generator | None = None,
        return_all: bool = False,
    ) -> Tensor | dict[str, Tensor]:
        """Render from normalised parameters.

        Args:
            u: ``(batch, n_params)`` in [0, 1] (values outside extrapolate the ranges).
            n_samples: output length.
            note_s: note-off time in seconds, scalar or ``(batch,)``; default 75% of the length.
            generator: seeds noise modules (same generator state, same audio).
            return_all: return every module's output ``{name: (batch, time)}`` (for DiffMoog's
                signal-chain loss) instead of the patch output.

        Returns:
            Audio ``(batch, 1, n_samples)`` or the dict of module outputs.
        """
        free = self.denormalise(u)
        return self._render(free, u.shape[0], u, n_samples=n_samples, note_s=note_s,
                            generator=generator, return_all=return_all)

    def render(
        self,
        params: Mapping[str, Tensor | float],
        *,
        n_samples: int,
        note_s: float | Tensor | None = None,
        generator: torch.Generator | None = None,
        return_all: bool = False,
        dtype: torch.dtype | None = None,
    ) -> Tensor | dict[str, Tensor]:
        """Render from physical parameter values (missing free parameters take their default).

        Args:
            params: ``{"module.param": value}`` with numbers or ``(batch,)`` tensors.
            n_samples: output length.
            note_s: note-off time in seconds.
            generator: seeds noise modules.
            return_all: return every module's output.
            dtype: dtype when every value is a number.

        Returns:
            Audio ``(batch, 1, n_samples)`` (or the dict of module outputs).
        """
        unknown = [k for k in params if k not in self.all_ranges]
        if unknown:
            raise InputError(
                f"unknown parameters {unknown}; expected names from {self.param_names}"
            )
        tens = [v for v in params.values() if isinstance(v, Tensor)]
        dt = dtype or (tens[0].dtype if tens else torch.get_default_dtype())
        dev = tens[0].device if tens else torch.device("cpu")
        like = torch.empty((), dtype=dt, device=dev)
        batch = max([int(v.reshape(-1).shape[0]) for v in tens] + [1])
        free = {}
        for k, r in self.param_ranges.items():
            v = params.get(k, r.default_value)
            free[k] = torch.as_tensor(v, dtype=dt, device=dev).reshape(-1).expand(batch)
        for k in params:
            if k in self.fixed:
                raise InputError(f"parameter {k!r} is fixed in this patch; it cannot be set")
        return self._render(free, batch, like, n_samples=n_samples, note_s=note_s,
                            generator=generator, return_all=return_all)

    def _render(self, free: Mapping[str, Tensor], batch: int, like: Tensor, *, n_samples: int,
                note_s: float | Tensor | None, generator: torch.Generator | None,
                return_all: bool) -> Tensor | dict[str, Tensor]:
        n = check_int(n_samples, "n_samples", minimum=1)
        params = self._full_params(free, batch, like)
        if note_s is None:
            gate = torch.full((batch,), 0.75 * n / self.sample_rate, dtype=like.dtype,
                              device=like.device)
        else:
            gate = torch.as_tensor(note_s, dtype=like.dtype, device=like.device).expand(batch)
        ctx = RenderContext(sample_rate=self.sample_rate, n_samples=n, batch=batch, note_s=gate,
                            dtype=like.dtype, device=like.device, generator=generator)
        outs: dict[str, Tensor] = {}
        # sums of several sources into one port, shared between ports fed by the same sources
        # (e.g. LFO + envelope into both VCOs' pitch); modules never write into their inputs
        sums: dict[tuple[str, ...], Tensor] = {}
        n_reads: dict[str, int] = {}
        for src, _dst in self.connections:
            n_reads[src] = n_reads.get(src, 0) + 1
        for name in self.order:
            module = self._module(name)
            srcs: dict[str, list[str]] = {}
            for src, dst in self.connections:
                mod, port = _split_dst(dst)
                if mod == name:
                    srcs.setdefault(port, []).append(src)
            inputs: dict[str, Tensor] = {}
            writable = set()
            for port, names in srcs.items():
                if (not return_all and len(names) == 1 and n_reads[names[0]] == 1
                        and names[0] != self.output):
                    writable.add(port)  # this port is the only reader of that output
                key = tuple(names)
                if key not in sums:
                    acc = outs[names[0]]
                    for src in names[1:]:
                        acc = acc + outs[src]
                    sums[key] = acc
                inputs[port] = sums[key]
            mp = {p: params[f"{name}.{p}"] for p in module.param_ranges}
            ctx.writable = frozenset(writable)
            outs[name] = module(inputs, mp, ctx)
        if return_all:
            return {k: v.expand(batch, n) for k, v in outs.items()}
        return outs[self.output].expand(batch, n).unsqueeze(1)

    # ------------------------------------------------------------------ JSON
    def to_dict(self, params: Mapping[str, Tensor | float] | None = None) -> dict[str, Any]:
        """Plain-data description (rebuilds the patch with :meth:`from_dict`).

        ``params`` (physical values of one sound, numbers or 1-element tensors) are stored under
        ``"params"``.
        """
        d: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "sample_rate": self.sample_rate,
            "modules": {k: self._module(k).to_dict() for k in self.synth_modules},
            "connections": [list(c) for c in self.connections],
            "output": self.output,
            "fixed": dict(self.fixed),
            "sampling": {k: list(v) for k, v in self.sampling.items()},
            "param_ranges": {k: r.to_dict() for k, r in self.param_ranges.items()},
        }
        if params is not None:
            d["params"] = {k: float(torch.as_tensor(v).reshape(-1)[0]) for k, v in params.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Patch:
        """Rebuild a patch from :meth:`to_dict` output (the ``params`` entry is ignored here)."""
        if d.get("format") != FORMAT:
            raise InputError(f"not a diffdsp patch: format must be {FORMAT!r}, got "
                             f"{d.get('format')!r}")
        try:
            modules = {k: build_module(v) for k, v in d["modules"].items()}
            return cls(modules, [tuple(c) for c in d["connections"]], d["output"],
                       sample_rate=int(d.get("sample_rate", 44100)), fixed=d.get("fixed"),
                       sampling=d.get("sampling"), name=d.get("name", "patch"))
        except KeyError as exc:
            raise InputError(f"patch JSON is missing the key {exc}") from None

    def save(
        self, path: str | os.PathLike[str], params: Mapping[str, Tensor | float] | None = None
    ) -> Path:
        """Write the patch (and optionally one sound's parameters) as JSON, atomically."""
        from diffdsp.io import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict(params), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[Patch, dict[str, float] | None]:
        """Read a patch JSON; returns ``(patch, params or None)``."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise InputError(f"patch file {str(p)!r} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"patch file {str(p)!r} is not valid JSON: {exc}") from None
        if not isinstance(d, dict):
            raise InputError(f"patch file {str(p)!r} must hold a JSON object")
        patch = cls.from_dict(d)
        params = d.get("params")
        return patch, ({k: float(v) for k, v in params.items()} if params else None)
