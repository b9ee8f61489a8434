"""Frequency-sampled LTI systems: the shared grid, the base class and the composition operators.

A system is evaluated on the M = nfft // 2 + 1 bins of a real FFT grid. To suppress time aliasing
the grid lies on a circle of radius ``1 / gamma`` outside the unit circle: every system returns
``H(z / gamma)`` (so ``z^{-1} -> gamma e^{-j w}``) and :class:`Shell` multiplies the inverse FFT by
``gamma^{-n}``. The alias of the tail beyond ``nfft`` samples is attenuated by ``alias_decay_db``.

All systems share one :class:`FrequencyGrid` (nfft, gamma, sample rate, dtype, as buffers): the
composites check that their parts use the same grid and compatible channel counts when built.

Responses are MIMO: ``(M, out_channels, in_channels)``. Diagonal systems (delays, per-channel
filters) also give their ``(M, N)`` diagonal directly (:meth:`LTISystem.diagonal_response`) so
that chains of them stay elementwise.

References:
    Dal Santo, Götz, Schlecht & Välimäki, "FLAMO: an open-source library for frequency-domain
    differentiable audio processing", ICASSP 2025; Lee et al., "Differentiable artificial
    reverberation", IEEE/ACM TASLP 2022 (the gamma envelope).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import cast

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_int, check_sample_rate

__all__ = ["Feedback", "FrequencyGrid", "LTISystem", "Parallel", "Series", "Shell"]


class FrequencyGrid(nn.Module):
    """The frequency grid every system of one graph is sampled on.

    Args:
        nfft: FFT length (even, >= 2); the impulse response has ``nfft`` samples.
        sample_rate: Hz.
        alias_decay_db: attenuation of the time-aliased tail, dB (``gamma = 10^(-a/(20 nfft))``;
            0 gives the unit circle).
        dtype: real dtype (float32 or float64); responses are the matching complex dtype.

    Examples:
        >>> grid = FrequencyGrid(16, 48000, alias_decay_db=0.0)
        >>> grid.n_bins, round(grid.gamma, 6)
        (9, 1.0)
        >>> bool(torch.allclose(grid.delay(torch.tensor([1.0])), grid.zinv.unsqueeze(-1)))
        True

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO), Sec. 2; Lee et al., TASLP 2022.
    """

    omega: Tensor
    zinv: Tensor
    envelope: Tensor
    bin_index: Tensor

    def __init__(
        self, nfft: int, sample_rate: int, *, alias_decay_db: float = 0.0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.nfft = check_int(nfft, "nfft", minimum=2)
        if self.nfft % 2:
            raise InputError(f"nfft must be even, got {nfft}")
        self.sample_rate = check_sample_rate(sample_rate)
        if not (math.isfinite(alias_decay_db) and alias_decay_db >= 0.0):
            raise InputError(f"alias_decay_db must be finite and >= 0, got {alias_decay_db!r}")
        if dtype not in (torch.float32, torch.float64):
            raise InputError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.alias_decay_db = float(alias_decay_db)
        self.log_gamma = -self.alias_decay_db / 20.0 * math.log(10.0) / self.nfft
        self.n_bins = self.nfft // 2 + 1
        k = torch.arange(self.n_bins, dtype=torch.float64)
        omega = 2.0 * math.pi * k / self.nfft
        cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
        zinv = torch.exp(self.log_gamma - 1j * omega)
        n = torch.arange(self.nfft, dtype=torch.float64)
        self.register_buffer("omega", omega.to(dtype), persistent=False)
        self.register_buffer("bin_index", k, persistent=False)
        self.register_buffer("zinv", zinv.to(cdt), persistent=False)
        self.register_buffer("envelope", torch.exp(-self.log_gamma * n).to(dtype), persistent=False)

    @property
    def gamma(self) -> float:
        """Radius factor gamma (< 1 when alias_decay_db > 0)."""
        return math.exp(self.log_gamma)

    @property
    def dtype(self) -> torch.dtype:
        """Real dtype of the grid."""
        return self.omega.dtype

    @property
    def complex_dtype(self) -> torch.dtype:
        """Complex dtype of the responses."""
        return self.zinv.dtype

    @property
    def freqs_hz(self) -> Tensor:
        """Bin frequencies in Hz, ``(M,)``."""
        return self.omega * (self.sample_rate / (2.0 * math.pi))

    def delay(self, samples: Tensor) -> Tensor:
        """Response ``(M, ...)`` of delays of ``samples`` (any real values) on the grid.

        The phase ``w m`` is reduced modulo ``2 pi`` in float64 so that long delays keep their
        accuracy in float32; differentiable w.r.t. ``samples``.
        """
        m = samples.to(torch.float64).unsqueeze(0)
        k = self.bin_index.reshape(-1, *([1] * samples.ndim))
        turns = torch.remainder(k * m, float(self.nfft))
        phase = turns * (2.0 * math.pi / self.nfft)
        mag = torch.exp(self.log_gamma * m)
        return torch.polar(mag.expand_as(phase), -phase).to(self.complex_dtype)

    def polyval(self, coeffs: Tensor) -> Tensor:
        """``sum_k c_k z^{-k}`` on the grid for polynomials ``(..., K)``; returns ``(M, ...)``.

        Uses ``rfft(c_k gamma^k, nfft)``, exact for ``K <= nfft``; the result has the complex
        dtype matching ``coeffs`` (float64 coefficients give complex128).
        """
        kk = coeffs.shape[-1]
        if kk > self.nfft:
            raise InputError(f"polynomial of length {kk} does not fit nfft={self.nfft}")
        scale = torch.exp(self.log_gamma * torch.arange(kk, dtype=torch.float64)).to(coeffs.dtype)
        spec = torch.fft.rfft(coeffs * scale.to(coeffs.device), n=self.nfft, dim=-1)
        return spec.movedim(-1, 0)

    def extra_repr(self) -> str:
        return (f"nfft={self.nfft}, sample_rate={self.sample_rate}, "
                f"alias_decay_db={self.alias_decay_db}, dtype={self.dtype}")

    def same_as(self, other: FrequencyGrid) -> bool:
        """Whether two grids sample the same points (nfft, gamma, sample rate, dtype)."""
        return (
            self is other
            or (self.nfft == other.nfft and self.sample_rate == other.sample_rate
                and self.alias_decay_db == other.alias_decay_db and self.dtype == other.dtype)
        )


class LTISystem(nn.Module):
    """Base class: an MIMO LTI system sampled on a :class:`FrequencyGrid`.

    Subclasses set ``in_channels``, ``out_channels``, ``is_diagonal`` (response is a diagonal
    matrix, ``in == out``) and ``is_static`` (frequency independent) and implement
    :meth:`diagonal_response` (diagonal systems), :meth:`static_matrix` (static systems) or
    :meth:`response`.
    """

    is_diagonal: bool = False
    is_static: bool = False

    def __init__(self, grid: FrequencyGrid, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if not isinstance(grid, FrequencyGrid):
            raise TypeError(f"grid must be a FrequencyGrid, got {type(grid).__name__}")
        self.grid = grid
        self.in_channels = check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = check_int(out_channels, "out_channels", minimum=1)

    def diagonal_response(self) -> Tensor:
        """``(M, N)`` diagonal of the response (diagonal systems only)."""
        raise NotImplementedError(f"{type(self).__name__} is not diagonal")

    def static_matrix(self) -> Tensor:
        """``(out, in)`` frequency-independent matrix (static systems only)."""
        raise NotImplementedError(f"{type(self).__name__} is not frequency independent")

    def response(self) -> Tensor:
        """Complex frequency response ``(M, out_channels, in_channels)``."""
        if self.is_diagonal:
            return torch.diag_embed(self.diagonal_response())
        if self.is_static:
            mat = self.static_matrix().to(self.grid.complex_dtype)
            return mat.unsqueeze(0).expand(self.grid.n_bins, -1, -1)
        raise NotImplementedError(type(self).__name__)

    def forward(self) -> Tensor:
        """Same as :meth:`response`."""
        return self.response()


def _check_grid(parts: list[LTISystem]) -> FrequencyGrid:
    if not parts:
        raise InputError("a composite system needs at least one part")
    for p in parts:
        if not isinstance(p, LTISystem):
            raise TypeError(f"parts must be LTISystem modules, got {type(p).__name__}")
    grid = parts[0].grid
    for p in parts[1:]:
        if not p.grid.same_as(grid):
            raise InputError(
                f"parts must share one FrequencyGrid: {grid.extra_repr()} vs {p.grid.extra_repr()}"
            )
    return grid


def _named(parts: tuple[LTISystem | Mapping[str, LTISystem], ...]) -> OrderedDict[str, LTISystem]:
    if len(parts) == 1 and isinstance(parts[0], Mapping):
        return OrderedDict(parts[0])
    return OrderedDict((str(i), cast(LTISystem, p)) for i, p in enumerate(parts))


class _Composite(LTISystem):
    """A system built from named parts (held in ``self.parts``)."""

    parts: nn.ModuleDict

    def _parts(self) -> list[LTISystem]:
        return [cast(LTISystem, p) for p in self.parts.values()]


class Series(_Composite):
    """Cascade ``H = H_K ... H_2 H_1`` (the first part is applied first).

    Args:
        *parts: systems, or one mapping name -> system; consecutive parts must agree
            (``out_channels`` of one == ``in_channels`` of the next) and share the grid.

    Examples:
        >>> from diffdsp.lti.systems import Delay, Gain
        >>> grid = FrequencyGrid(8, 48000)
        >>> s = Series(Delay(grid, [1.0]), Gain(grid, [[0.5]]))
        >>> bool(torch.allclose(s.response()[:, 0, 0], 0.5 * grid.zinv))
        True

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO ``Series``).
    """

    def __init__(self, *parts: LTISystem | Mapping[str, LTISystem]) -> None:
        named = _named(parts)
        plist = list(named.values())
        grid = _check_grid(plist)
        for a, b in itertools.pairwise(plist):
            if a.out_channels != b.in_channels:
                raise InputError(
                    f"Series parts disagree: {type(a).__name__} has {a.out_channels} outputs but "
                    f"{type(b).__name__} expects {b.in_channels} inputs"
                )
        super().__init__(grid, plist[0].in_channels, plist[-1].out_channels)
        self.parts = nn.ModuleDict(named)
        self.is_diagonal = all(p.is_diagonal for p in plist)
        self.is_static = all(p.is_static for p in plist)

    def diagonal_response(self) -> Tensor:
        out: Tensor | None = None
        for p in self._parts():
            if p.is_static:
                d = torch.diagonal(p.static_matrix()).to(self.grid.complex_dtype).unsqueeze(0)
            else:
                d = p.diagonal_response()
            out = d if out is None else out * d
        assert out is not None
        return out.expand(self.grid.n_bins, -1) if out.shape[0] == 1 else out

    def static_matrix(self) -> Tensor:
        out: Tensor | None = None
        for p in self._parts():
            m = p.static_matrix()
            out = m if out is None else m @ out
        assert out is not None
        return out

    def response(self) -> Tensor:
        if self.is_diagonal or self.is_static:
            return super().response()
        out: Tensor | None = None
        for p in self._parts():
            if p.is_diagonal and out is not None:
                out = p.diagonal_response().unsqueeze(-1) * out
                continue
            if p.is_static and out is not None:
                out = p.static_matrix().to(out.dtype) @ out
                continue
            h = p.response()
            out = h if out is None else h @ out
        assert out is not None
        return out


class Parallel(_Composite):
    """Sum of systems with the same input and output channel counts, ``H = sum_k H_k``.

    Examples:
        >>> from diffdsp.lti.systems import Gain
        >>> grid = FrequencyGrid(8, 48000)
        >>> p = Parallel(Gain(grid, [[0.25]]), Gain(grid, [[0.5]]))
        >>> float(p.response()[0, 0, 0].real.detach())
        0.75

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO ``Parallel``).
    """

    def __init__(self, *parts: LTISystem | Mapping[str, LTISystem]) -> None:
        named = _named(parts)
        plist = list(named.values())
        grid = _check_grid(plist)
        first = plist[0]
        for p in plist[1:]:
            if (p.in_channels, p.out_channels) != (first.in_channels, first.out_channels):
                raise InputError(
                    f"Parallel parts disagree: {type(first).__name__} is "
                    f"{first.out_channels}x{first.in_channels}, {type(p).__name__} is "
                    f"{p.out_channels}x{p.in_channels}"
                )
        super().__init__(grid, first.in_channels, first.out_channels)
        self.parts = nn.ModuleDict(named)
        self.is_diagonal = all(p.is_diagonal for p in plist)
        self.is_static = all(p.is_static for p in plist)

    def diagonal_response(self) -> Tensor:
        return torch.stack([p.diagonal_response() if not p.is_static else
                            torch.diagonal(p.static_matrix()).to(self.grid.complex_dtype)
                            .expand(self.grid.n_bins, -1)
                            for p in self._parts()]).sum(0)

    def static_matrix(self) -> Tensor:
        return torch.stack([p.static_matrix() for p in self._parts()]).sum(0)

    def response(self) -> Tensor:
        if self.is_diagonal or self.is_static:
            return super().response()
        return torch.stack([p.response() for p in self._parts()]).sum(0)


class Feedback(LTISystem):
    """Closed loop ``H = (I - G F)^{-1} G`` of a forward path G and a feedback path F, per bin.

    Args:
        forward_path: G, ``N -> N``.
        feedback_path: F, ``N -> N``.

    When F is frequency independent and G diagonal (an FDN: delays and attenuation forward, the
    mixing matrix in the feedback), the loop matrix is built without any per-bin matrix product,
    and :meth:`siso` evaluates ``c^T H b`` with the compiled per-bin elimination of
    :func:`diffdsp.functional.fdn.fdn_transfer` (about 4x faster than a batched solve).

    Examples:
        >>> from diffdsp.lti.systems import Delay, Gain
        >>> grid = FrequencyGrid(8, 48000)
        >>> fb = Feedback(Delay(grid, [1.0]), Gain(grid, [[0.5]]))
        >>> z = grid.zinv
        >>> bool(torch.allclose(fb.response()[:, 0, 0], z / (1 - 0.5 * z)))
        True

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO ``Recursion``), eq. 2.
    """

    forward_path: LTISystem
    feedback_path: LTISystem

    def __init__(self, forward_path: LTISystem, feedback_path: LTISystem) -> None:
        grid = _check_grid([forward_path, feedback_path])
        n = forward_path.out_channels
        if not (forward_path.in_channels == n == feedback_path.in_channels
                == feedback_path.out_channels):
            raise InputError(
                "Feedback needs square paths of one size: forward is "
                f"{forward_path.out_channels}x{forward_path.in_channels}, feedback is "
                f"{feedback_path.out_channels}x{feedback_path.in_channels}"
            )
        super().__init__(grid, n, n)
        self.forward_path = forward_path
        self.feedback_path = feedback_path

    def response(self) -> Tensor:
        fwd, fb = self.forward_path, self.feedback_path
        n = self.in_channels
        eye = torch.eye(n, dtype=self.grid.complex_dtype, device=self.grid.zinv.device)
        if fwd.is_diagonal and fb.is_static:
            g = fwd.diagonal_response()  # (M, N)
            f = fb.static_matrix().to(g.dtype)
            loop = eye - g.unsqueeze(-1) * f
            return torch.linalg.solve(loop, torch.diag_embed(g))
        g_full = fwd.response()
        f_full = fb.static_matrix().to(g_full.dtype) if fb.is_static else fb.response()
        loop = eye - g_full @ f_full
        return torch.linalg.solve(loop, g_full)

    def siso(self, input_gains: Tensor, output_gains: Tensor) -> Tensor:
        """``c^T (I - G F)^{-1} G b`` per bin, ``(M,)`` (fast compiled path when possible)."""
        fwd, fb = self.forward_path, self.feedback_path
        if fwd.is_diagonal and fb.is_static:
            from diffdsp.functional.fdn import fdn_transfer

            return fdn_transfer(
                fwd.diagonal_response(), feedback_matrix=fb.static_matrix(),
                input_gains=input_gains, output_gains=output_gains,
            )
        h = self.response()
        return torch.einsum("i,mij,j->m", output_gains.to(h.dtype), h, input_gains.to(h.dtype))


class Shell(nn.Module):
    """Map between time and frequency around a core system (FFT -> core -> inverse FFT).

    ``impulse_response()`` returns the core's impulse response ``(out, in, nfft)`` with the gamma
    envelope removed; ``forward(x)`` filters a signal ``(..., in_channels, time)`` (circular
    convolution of length nfft: pad ``x`` so that ``time + ir_length <= nfft`` for a linear one).

    Examples:
        >>> from diffdsp.lti.systems import Delay
        >>> grid = FrequencyGrid(8, 48000, alias_decay_db=20.0)
        >>> h = Shell(Delay(grid, [2.0])).impulse_response()
        >>> [round(v, 6) for v in h[0, 0].tolist()]
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO ``Shell``, ``iFFTAntiAlias``).
    """

    core: LTISystem

    def __init__(self, core: LTISystem) -> None:
        super().__init__()
        if not isinstance(core, LTISystem):
            raise TypeError(f"core must be an LTISystem, got {type(core).__name__}")
        self.core = core

    @property
    def grid(self) -> FrequencyGrid:
        """The core's grid."""
        return self.core.grid

    def impulse_response(self) -> Tensor:
        """Real impulse response ``(out, in, nfft)``."""
        h = self.core.response()  # (M, out, in)
        ir = torch.fft.irfft(h.movedim(0, -1), n=self.grid.nfft, dim=-1)
        return ir * self.grid.envelope

    def forward(self, x: Tensor) -> Tensor:
        """Filter ``x`` ``(..., in_channels, time)`` -> ``(..., out_channels, time)``."""
        if x.ndim < 2 or x.shape[-2] != self.core.in_channels:
            raise InputError(
                f"x must be (..., {self.core.in_channels}, time), got {tuple(x.shape)}"
            )
        t = x.shape[-1]
        if t > self.grid.nfft:
            raise InputError(f"x has {t} samples, more than nfft={self.grid.nfft}")
        env = self.grid.envelope
        xs = torch.fft.rfft(x * (1.0 / env[:t]), n=self.grid.nfft, dim=-1)  # gamma^n x[n]
        h = self.core.response()  # (M, out, in)
        ys = torch.einsum("moi,...im->...om", h, xs.to(h.dtype))
        y = torch.fft.irfft(ys, n=self.grid.nfft, dim=-1)[..., :t]
        return y * env[:t]
