"""Elementary frequency-sampled systems: gains, matrices, delays, FIR and biquad filters.

Every learnable quantity is stored as an unconstrained raw tensor and mapped to a valid value in
``forward`` (orthogonal matrices via the matrix exponential, delays positive via a softplus,
frequencies inside ``(0, fs/2)`` via a log-sigmoid, cut-only EQ gains ``<= 0 dB`` via a negative
softplus), so every value an optimiser can reach is a valid, stable system.

References:
    Dal Santo et al., ICASSP 2025 (FLAMO); R. Bristow-Johnson, "Audio EQ cookbook" (biquads);
    Nercessian, "Neural parametric equalizer matching using differentiable biquads", DAFx 2020;
    Välimäki & Liski, "Accurate cascade graphic equalizer", IEEE SPL 2017 (interaction matrix).
    The biquad coefficients come from :func:`diffdsp.functional.filters.biquad`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int
from diffdsp.functional.filters import BIQUAD_KINDS, biquad
from diffdsp.lti.core import FrequencyGrid, LTISystem
from diffdsp.params import ParamRange, inverse_positive_map, orthogonal_map, positive_map

__all__ = [
    "FIR",
    "GEQ",
    "PEQ",
    "SVF",
    "Biquad",
    "Delay",
    "Gain",
    "Matrix",
    "octave_centers_hz",
]



def _tensor(value: Tensor | Sequence[float] | Sequence[Sequence[float]] | float,
            dtype: torch.dtype) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().to(dtype).clone()
    return torch.as_tensor(value, dtype=dtype)


def _register(module: nn.Module, name: str, value: Tensor, learnable: bool) -> None:
    if learnable:
        module.register_parameter(name, nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def octave_centers_hz(sample_rate: int, *, lowest_hz: float = 31.25) -> list[float]:
    """Octave-band centres ``1000 * 2^k`` from ``lowest_hz`` whose upper edge is below Nyquist.

    Examples:
        >>> octave_centers_hz(48000)
        [31.25, 62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0]
    """
    out = []
    k = round(math.log2(lowest_hz / 1000.0))
    while 1000.0 * 2.0**k * math.sqrt(2.0) < sample_rate / 2.0:
        out.append(1000.0 * 2.0**k)
        k += 1
    return out


class Gain(LTISystem):
    """Frequency-independent gain matrix ``(out, in)`` (or per-channel gains when 1-D).

    Examples:
        >>> g = Gain(FrequencyGrid(8, 48000), [[1.0, 2.0]])
        >>> g.response().shape
        torch.Size([5, 1, 2])
    """

    gains: Tensor

    is_static = True

    def __init__(self, grid: FrequencyGrid,
                 gains: Tensor | Sequence[float] | Sequence[Sequence[float]],
                 *, learnable: bool = True) -> None:
        g = _tensor(gains, grid.dtype)
        if g.ndim == 1:
            super().__init__(grid, g.shape[0], g.shape[0])
            self.is_diagonal = True
        elif g.ndim == 2:
            super().__init__(grid, g.shape[1], g.shape[0])
        else:
            raise InputError(f"gains must be (N,) or (out, in), got {tuple(g.shape)}")
        _register(self, "gains", g, learnable)

    def static_matrix(self) -> Tensor:
        g: Tensor = self.gains
        return torch.diag(g) if g.ndim == 1 else g

    def diagonal_response(self) -> Tensor:
        return self.gains.to(self.grid.complex_dtype).unsqueeze(0).expand(self.grid.n_bins, -1)


def _hadamard(n: int) -> Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / math.sqrt(n)


class Matrix(LTISystem):
    """Square mixing matrix ``(N, N)`` with a parameterisation that keeps it valid.

    Args:
        grid: the frequency grid.
        size: N.
        kind: ``"orthogonal"`` (matrix exponential of a skew-symmetric raw matrix),
            ``"householder"`` (``I - 2 u u^T / |u|^2``), ``"hadamard"`` (fixed, N a power of 2),
            ``"circulant"`` (orthogonal circulant: unit-modulus DFT eigenvalues with learnable
            phases) or ``"free"`` (any matrix).
        seed: seed of the random initialisation.
        learnable: whether the raw parameters are trained.
        init: optional initial matrix for ``"free"``, or raw tensor for the other kinds.

    Examples:
        >>> m = Matrix(FrequencyGrid(8, 48000), 4, kind="householder")
        >>> q = m.static_matrix()
        >>> bool(torch.allclose(q @ q.T, torch.eye(4), atol=1e-6))
        True

    References:
        Schlecht & Habets, "On lossless feedback delay networks", IEEE TSP 2017; FLAMO
        ``Matrix(map=orthogonal)``.
    """

    raw: Tensor

    is_static = True
    KINDS = ("orthogonal", "householder", "hadamard", "circulant", "free")

    def __init__(self, grid: FrequencyGrid, size: int, *, kind: str = "orthogonal", seed: int = 0,
                 learnable: bool = True, init: Tensor | None = None) -> None:
        n = check_int(size, "size", minimum=1)
        super().__init__(grid, n, n)
        self.kind = check_choice(kind, "kind", self.KINDS)
        gen = torch.Generator().manual_seed(seed)
        dt = grid.dtype
        if kind == "hadamard":
            if n & (n - 1):
                raise InputError(f"a Hadamard matrix needs N a power of 2, got {n}")
            self.register_buffer("raw", _hadamard(n).to(dt))
            return
        if init is not None:
            raw = _tensor(init, dt)
        elif kind in ("orthogonal", "free"):
            raw = torch.randn(n, n, generator=gen, dtype=torch.float64).to(dt)
            if kind == "free":
                raw = torch.linalg.qr(raw)[0]
        else:
            raw = torch.randn(n, generator=gen, dtype=torch.float64).to(dt)
        _register(self, "raw", raw, learnable)

    @property
    def is_orthogonal(self) -> bool:
        """Whether the parameterisation guarantees an orthogonal matrix."""
        return self.kind != "free"

    def static_matrix(self) -> Tensor:
        raw: Tensor = self.raw
        n = self.in_channels
        if self.kind in ("hadamard", "free"):
            return raw
        if self.kind == "orthogonal":
            return orthogonal_map(raw)
        if self.kind == "householder":
            u = raw / torch.linalg.vector_norm(raw).clamp_min(1e-12)
            return torch.eye(n, dtype=raw.dtype, device=raw.device) - 2.0 * torch.outer(u, u)
        # circulant: eigenvalues exp(j phi) with phi odd-symmetric -> real orthogonal circulant
        idx = torch.arange(n, device=raw.device)
        phi = raw - raw[(-idx) % n]
        lam = torch.polar(torch.ones_like(phi), phi)
        col = torch.fft.ifft(lam).real
        return col[(idx.unsqueeze(1) - idx.unsqueeze(0)) % n]


class Delay(LTISystem):
    """Per-channel delays ``z^{-m_i}`` (diagonal), positive by construction.

    Args:
        grid: the frequency grid.
        delay_samples: N initial lengths (samples, > ``min_samples``).
        learnable: train the lengths.
        mode: ``"fractional"`` (ideal band-limited delay ``e^{-j w m}``) or ``"integer"`` (rounded
            in the forward pass with a straight-through gradient, so it is never zero).
        min_samples: lower bound of every length.

    Examples:
        >>> d = Delay(FrequencyGrid(8, 48000), [2.5], learnable=True)
        >>> round(float(d.samples[0]), 4)
        2.5

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO ``Delay``; here without its zero-gradient round).
    """

    raw: Tensor

    is_diagonal = True

    def __init__(self, grid: FrequencyGrid, delay_samples: Tensor | Sequence[float], *,
                 learnable: bool = False, mode: str = "fractional",
                 min_samples: float = 0.0) -> None:
        m = _tensor(delay_samples, torch.float64)
        if m.ndim != 1:
            raise InputError(f"delay_samples must be (N,), got {tuple(m.shape)}")
        super().__init__(grid, m.shape[0], m.shape[0])
        self.mode = check_choice(mode, "mode", ("fractional", "integer"))
        if not min_samples >= 0.0:
            raise InputError(f"min_samples must be >= 0, got {min_samples!r}")
        if bool((m <= min_samples).any()):
            raise InputError(f"delay_samples must be > {min_samples}, got {m.tolist()}")
        self.min_samples = float(min_samples)
        _register(self, "raw", inverse_positive_map(m, self.min_samples).to(grid.dtype), learnable)

    @property
    def samples(self) -> Tensor:
        """Current lengths in samples ``(N,)``."""
        m = positive_map(self.raw.to(torch.float64), self.min_samples)
        if self.mode == "integer":
            m = m + (torch.round(m) - m).detach()
        return m

    def diagonal_response(self) -> Tensor:
        raw: Tensor = self.raw
        if raw.requires_grad:
            return self.grid.delay(self.samples)
        # fixed delays: reuse the response while the lengths, device and dtype are unchanged
        key = (raw._version, raw.data_ptr(), self.grid.zinv.data_ptr(), self.grid.nfft)
        cached = self.__dict__.get("_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        resp = self.grid.delay(self.samples)
        self.__dict__["_cache"] = (key, resp)
        return resp


class FIR(LTISystem):
    """FIR filters: per channel ``(N, K)`` (diagonal) or a full MIMO matrix ``(out, in, K)``.

    Examples:
        >>> f = FIR(FrequencyGrid(8, 48000), [[0.5, 0.5]])
        >>> round(float(f.diagonal_response()[0, 0].real), 4)   # DC gain
        1.0
    """

    coeffs: Tensor

    def __init__(self, grid: FrequencyGrid, coeffs: Tensor | Sequence[Sequence[float]], *,
                 learnable: bool = True) -> None:
        c = _tensor(coeffs, grid.dtype)
        if c.ndim == 2:
            super().__init__(grid, c.shape[0], c.shape[0])
            self.is_diagonal = True
        elif c.ndim == 3:
            super().__init__(grid, c.shape[1], c.shape[0])
        else:
            raise InputError(f"coeffs must be (N, K) or (out, in, K), got {tuple(c.shape)}")
        _register(self, "coeffs", c, learnable)

    def diagonal_response(self) -> Tensor:
        return self.grid.polyval(self.coeffs)

    def response(self) -> Tensor:
        if self.is_diagonal:
            return super().response()
        return self.grid.polyval(self.coeffs)


def _poly_product(c: Tensor) -> Tensor:
    """Coefficients of the product of the K polynomials ``(..., K, 3)`` -> ``(..., 2K+1)``."""
    out = c[..., 0, :]
    for k in range(1, c.shape[-2]):
        sec = c[..., k, :]
        n = out.shape[-1]
        out = (torch.nn.functional.pad(out * sec[..., 0:1], (0, 2))
               + torch.nn.functional.pad(out * sec[..., 1:2], (1, 1))
               + torch.nn.functional.pad(out * sec[..., 2:3], (2, 0)))
        assert out.shape[-1] == n + 2
    return out


def _sos_response(grid: FrequencyGrid, b: Tensor, a: Tensor, *, group: int = 3) -> Tensor:
    """Product over sections of ``B(z)/A(z)`` for ``b, a`` ``(N, K, 3)`` -> ``(M, N)``.

    Groups of at most ``group`` sections are expanded to numerator and denominator polynomials
    in float64 and evaluated by real FFTs (a handful of FFTs instead of ``M x N x K`` complex
    evaluations). ``group=1`` evaluates every section on its own: needed when section
    frequencies can move freely (learned), because two or three poles near ``z = 1`` make the
    expanded polynomial vanish to rounding at DC (0/0).
    """
    kk = b.shape[-2]
    n_chunks = max(1, math.ceil(kk / group))
    # interleave: sections sorted by frequency go round-robin into chunks of <= 3, so that no
    # chunk holds two low-frequency sections (poles near z = 1 would make the expanded
    # polynomial ill-conditioned)
    out: Tensor | None = None
    for c in range(n_chunks):
        sel = list(range(c, kk, n_chunks))
        num = grid.polyval(_poly_product(b[..., sel, :].to(torch.float64)))
        den = grid.polyval(_poly_product(a[..., sel, :].to(torch.float64)))
        r = num / den
        out = r if out is None else out * r
    assert out is not None
    return out.to(grid.complex_dtype)


class _BiquadBank(LTISystem):
    """Shared machinery: N channels x K biquad sections, parameters mapped from raw tensors."""

    raw_freq: Tensor
    raw_q: Tensor
    raw_gain: Tensor

    is_diagonal = True

    def __init__(self, grid: FrequencyGrid, n_channels: int, kinds: Sequence[str], *,
                 cutoff_hz: Tensor, q: Tensor, gain_db: Tensor, learnable: bool,
                 learn_frequency: bool, max_gain_db: float | None) -> None:
        n = check_int(n_channels, "n_channels", minimum=1)
        super().__init__(grid, n, n)
        for kd in kinds:
            check_choice(kd, "kind", BIQUAD_KINDS)
        self.kinds = list(kinds)
        kk = len(self.kinds)
        nyq = grid.sample_rate / 2.0
        self.freq_range = ParamRange(1.0, 0.999 * nyq, "log", unit="Hz")
        self.q_range = ParamRange(0.05, 50.0, "log")
        shape = (n, kk)
        fc = _tensor(cutoff_hz, torch.float64).expand(shape).clone()
        if bool(((fc <= 0) | (fc >= nyq)).any()):
            raise InputError(f"cutoff_hz must be in (0, {nyq}) for sample_rate "
                             f"{grid.sample_rate}, got {fc.unique().tolist()}")
        qq = _tensor(q, torch.float64).expand(shape).clone()
        if bool(((qq < self.q_range.min) | (qq > self.q_range.max)).any()):
            raise InputError(f"q must be in [0.05, 50], got {qq.unique().tolist()}")
        gg = _tensor(gain_db, torch.float64).expand(shape).clone()
        self.max_gain_db = max_gain_db
        if max_gain_db is not None and bool((gg > max_gain_db).any()):
            raise InputError(f"gain_db must be <= {max_gain_db}, got max {float(gg.max())}")
        dt = grid.dtype
        learn_f = learnable and learn_frequency
        _register(self, "raw_freq", self.freq_range.to_raw(fc).to(dt), learn_f)
        _register(self, "raw_q", self.q_range.to_raw(qq).to(dt), learnable and learn_frequency)
        if max_gain_db is None:
            raw_g = gg
        else:
            raw_g = inverse_positive_map(max_gain_db - gg + 1e-9)
        _register(self, "raw_gain", raw_g.to(dt), learnable)

    @property
    def cutoff_hz(self) -> Tensor:
        """``(N, K)`` centre/cutoff frequencies, Hz."""
        return self.freq_range.from_raw(self.raw_freq)

    @property
    def q(self) -> Tensor:
        """``(N, K)`` quality factors."""
        return self.q_range.from_raw(self.raw_q)

    @property
    def gain_db(self) -> Tensor:
        """``(N, K)`` section gains, dB (``<= max_gain_db`` by construction when it is set)."""
        if self.max_gain_db is None:
            return self.raw_gain
        return self.max_gain_db - positive_map(self.raw_gain)

    def coefficients(self, gain_db: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(b, a)`` each ``(N, K, 3)`` (with the stored gains, or ``gain_db`` ``(N, K)``)."""
        fc, q = self.cutoff_hz, self.q
        g = self.gain_db if gain_db is None else gain_db.expand_as(fc)
        bs, as_ = [], []
        for k, kind in enumerate(self.kinds):
            b, a = biquad(kind, cutoff_hz=fc[:, k], q=q[:, k], gain_db=g[:, k],
                                       sample_rate=self.grid.sample_rate)
            bs.append(b)
            as_.append(a)
        return torch.stack(bs, -2), torch.stack(as_, -2)

    def sos(self, gain_db: Tensor | None = None) -> Tensor:
        """Second-order sections ``(N, K, 6)`` (scipy layout) for time-domain filtering."""
        b, a = self.coefficients(gain_db)
        return torch.cat([b, a], -1)

    def diagonal_response(self, gain_db: Tensor | None = None) -> Tensor:
        b, a = self.coefficients(gain_db)
        # fixed, spread-out frequencies (GEQ bands) are safe to expand three at a time
        group = 1 if self.raw_freq.requires_grad else 3
        return _sos_response(self.grid, b, a, group=group)


class Biquad(_BiquadBank):
    """One RBJ biquad per channel (``kind`` as in :func:`diffdsp.functional.filters.biquad`).

    Examples:
        >>> bq = Biquad(FrequencyGrid(1024, 48000), "lowpass", 1, cutoff_hz=1000.0, q=0.7071)
        >>> round(float(bq.diagonal_response()[0, 0].abs()), 4)
        1.0
    """

    def __init__(self, grid: FrequencyGrid, kind: str, n_channels: int, *,
                 cutoff_hz: Tensor | float | Sequence[float], q: Tensor | float = 0.7071,
                 gain_db: Tensor | float = 0.0, learnable: bool = True) -> None:
        super().__init__(grid, n_channels, [kind], cutoff_hz=_tensor(cutoff_hz, torch.float64)
                         .reshape(-1, 1), q=_tensor(q, torch.float64).reshape(-1, 1),
                         gain_db=_tensor(gain_db, torch.float64).reshape(-1, 1),
                         learnable=learnable, learn_frequency=True, max_gain_db=None)


class PEQ(_BiquadBank):
    """Parametric EQ per channel: low shelf, ``K - 2`` peaking sections, high shelf.

    Args:
        grid: the frequency grid.
        n_channels: N.
        cutoff_hz: ``(K,)`` or ``(N, K)`` section frequencies, Hz (ascending).
        q: quality factors (shelves use 0.7071 for a monotone shelf).
        gain_db: section gains, dB.
        max_gain_db: if set, every gain is ``max_gain_db - softplus(raw)``; with 0 the EQ never
            exceeds 0 dB at any frequency (each cut section has ``|H| <= 1``).
        learnable: train gains (and frequencies/Q when ``learn_frequency``).
        learn_frequency: train frequencies and Q too.

    Examples:
        >>> eq = PEQ(FrequencyGrid(4096, 48000), 1, cutoff_hz=[100.0, 1000.0, 8000.0],
        ...          gain_db=-6.0, max_gain_db=0.0)
        >>> bool(eq.diagonal_response().abs().max() <= 1.0 + 1e-6)
        True

    References:
        Nercessian, DAFx 2020; Välimäki & Reiss, "All about audio equalization", Appl. Sci. 2016.
    """

    def __init__(self, grid: FrequencyGrid, n_channels: int, *, cutoff_hz: Tensor | Sequence[float],
                 q: Tensor | float | Sequence[float] = 0.7071,
                 gain_db: Tensor | float | Sequence[float] = 0.0,
                 max_gain_db: float | None = None, learnable: bool = True,
                 learn_frequency: bool = True) -> None:
        fc = _tensor(cutoff_hz, torch.float64)
        kk = fc.shape[-1]
        if kk < 2:
            raise InputError(f"a PEQ needs at least 2 sections (two shelves), got {kk}")
        kinds = ["lowshelf"] + ["peaking"] * (kk - 2) + ["highshelf"]
        super().__init__(grid, n_channels, kinds, cutoff_hz=fc, q=_tensor(q, torch.float64),
                         gain_db=_tensor(gain_db, torch.float64), learnable=learnable,
                         learn_frequency=learn_frequency, max_gain_db=max_gain_db)


class GEQ(PEQ):
    """Graphic EQ: fixed octave bands (shelves at the ends, peaks between), learnable gains.

    The command gains for a target response at the band centres are found with the interaction
    matrix of the bands (:meth:`command_gains`, two stages as in Välimäki & Liski 2017).

    Args:
        grid: the frequency grid.
        n_channels: N.
        center_hz: band centres (default: :func:`octave_centers_hz`).
        gain_db: initial command gains ``(K,)`` or ``(N, K)``.
        max_gain_db: as in :class:`PEQ` (0 makes a cut-only, never-amplifying EQ).
        learnable: train the command gains.

    Examples:
        >>> grid = FrequencyGrid(2**14, 48000)
        >>> geq = GEQ(grid, 1)
        >>> target = torch.linspace(-3.0, -12.0, len(geq.center_hz))
        >>> gains = geq.command_gains(target)
        >>> err = geq.response_at_centers_db(gains) - target
        >>> bool(err.abs().max() < 1.0)
        True

    References:
        Välimäki & Liski, "Accurate cascade graphic equalizer", IEEE SPL 24(2), 2017; Prawda,
        Schlecht & Välimäki, "Improved reverberation time control for FDNs", DAFx 2019.
    """

    def __init__(self, grid: FrequencyGrid, n_channels: int, *,
                 center_hz: Sequence[float] | None = None,
                 gain_db: Tensor | float | Sequence[float] = 0.0,
                 max_gain_db: float | None = None, learnable: bool = True) -> None:
        centers = list(center_hz) if center_hz is not None else octave_centers_hz(grid.sample_rate)
        if len(centers) < 2:
            raise InputError(f"a GEQ needs at least 2 bands, got {centers}")
        fc = torch.tensor(centers, dtype=torch.float64)
        # shelves cross over half an octave beyond the outer bands; peaks at the centres
        fc[0] = fc[0] * math.sqrt(2.0)
        fc[-1] = fc[-1] / math.sqrt(2.0)
        q = torch.full_like(fc, 1.0 / math.sqrt(2.0))
        self._peak_q = 1.0 / (2.0 * math.sinh(math.log(2.0) / 2.0))  # one-octave bandwidth
        q[1:-1] = self._peak_q
        super().__init__(grid, n_channels, cutoff_hz=fc, q=q, gain_db=gain_db,
                         max_gain_db=max_gain_db, learnable=learnable, learn_frequency=False)
        self.center_hz = centers

    def response_at_centers_db(self, gain_db: Tensor) -> Tensor:
        """Magnitude (dB) at the band centres of the cascade with command gains ``(..., K)``."""
        return _cascade_db(self, gain_db, torch.tensor(self.center_hz, dtype=gain_db.dtype))

    def response_at_db(self, gain_db: Tensor, freqs_hz: Tensor) -> Tensor:
        """Magnitude (dB) on the unit circle at ``freqs_hz`` ``(F,)`` for gains ``(..., K)``."""
        return _cascade_db(self, gain_db, freqs_hz.to(gain_db.dtype))

    def command_gains(self, target_db: Tensor, *, prototype_db: float = -12.0) -> Tensor:
        """Command gains ``(..., K)`` whose cascade hits ``target_db`` at the band centres.

        Two stages: solve with the interaction matrix measured at ``prototype_db``, then again
        with the one measured at the first-stage gains (differentiable).
        """
        kk = len(self.center_hz)
        proto = torch.full((kk,), prototype_db, dtype=target_db.dtype, device=target_db.device)
        b1 = _interaction(self, proto) / prototype_db
        g1 = torch.linalg.solve(b1.transpose(-1, -2), target_db.unsqueeze(-1)).squeeze(-1)
        # second stage: per-band interaction at the first-stage gains (unit-gain normalised)
        safe = torch.where(g1.abs() < 1e-3, torch.full_like(g1, -1e-3), g1)
        b2 = _interaction(self, safe) / safe.unsqueeze(-1)
        return torch.linalg.solve(b2.transpose(-1, -2), target_db.unsqueeze(-1)).squeeze(-1)


def _section_db(eq: _BiquadBank, k: int, gain_db: Tensor, freqs_hz: Tensor) -> Tensor:
    """dB magnitude of section ``k`` (gains ``(...,)``) at ``freqs_hz`` ``(F,)``: ``(..., F)``."""
    fc = eq.cutoff_hz[0, k].to(gain_db.dtype)
    q = eq.q[0, k].to(gain_db.dtype)
    b, a = biquad(eq.kinds[k], cutoff_hz=fc, q=q, gain_db=gain_db,
                               sample_rate=eq.grid.sample_rate)
    w = 2.0 * math.pi * freqs_hz / eq.grid.sample_rate
    zi = torch.exp(-1j * w.to(torch.float64)).to(torch.complex128 if gain_db.dtype ==
                                                    torch.float64 else torch.complex64)
    num = b[..., 0:1] + b[..., 1:2] * zi + b[..., 2:3] * zi * zi
    den = a[..., 0:1] + a[..., 1:2] * zi + a[..., 2:3] * zi * zi
    return 20.0 * torch.log10((num / den).abs())


def _interaction(eq: _BiquadBank, gain_db: Tensor) -> Tensor:
    """``(..., K, K)``: row k = dB response of section k (gain ``gain_db[..., k]``) at centres."""
    centers = torch.tensor(eq.center_hz if isinstance(eq, GEQ) else [], dtype=gain_db.dtype)
    rows = [_section_db(eq, k, gain_db[..., k], centers) for k in range(len(eq.kinds))]
    return torch.stack(rows, -2)


def _cascade_db(eq: _BiquadBank, gain_db: Tensor, freqs_hz: Tensor) -> Tensor:
    return torch.stack([_section_db(eq, k, gain_db[..., k], freqs_hz)
                        for k in range(len(eq.kinds))], 0).sum(0)


class SVF(LTISystem):
    """State-variable filter per channel with learnable cutoff, resonance and output mix.

    ``H = (m_LP g^2 (1+z^-1)^2 + m_BP g (1-z^-2) + m_HP (1-z^-1)^2) /
    ((1 + g^2 + 2Rg) + 2(g^2-1) z^-1 + (1 + g^2 - 2Rg) z^-2)`` with ``g = tan(pi f_c / f_s)`` and
    resonance ``R > 0`` (stable by construction).

    Examples:
        >>> svf = SVF(FrequencyGrid(64, 48000), 1, cutoff_hz=1000.0, resonance=0.7071,
        ...           mix=(1.0, 0.0, 0.0))
        >>> round(float(svf.diagonal_response()[0, 0].abs()), 4)   # low-pass DC gain
        1.0

    References:
        Zavalishin, "The art of VA filter design", 2018; FLAMO ``SVF``.
    """

    raw_freq: Tensor
    raw_resonance: Tensor
    mix: Tensor

    is_diagonal = True

    def __init__(self, grid: FrequencyGrid, n_channels: int, *, cutoff_hz: float | Tensor = 1000.0,
                 resonance: float | Tensor = 0.7071,
                 mix: Sequence[float] | Tensor = (1.0, 0.0, 0.0), learnable: bool = True) -> None:
        n = check_int(n_channels, "n_channels", minimum=1)
        super().__init__(grid, n, n)
        self.freq_range = ParamRange(1.0, 0.999 * grid.sample_rate / 2.0, "log", unit="Hz")
        fc = _tensor(cutoff_hz, torch.float64).expand(n).clone()
        if bool(((fc <= 0) | (fc >= grid.sample_rate / 2)).any()):
            raise InputError(f"cutoff_hz must be in (0, {grid.sample_rate / 2}), got {fc.tolist()}")
        r = _tensor(resonance, torch.float64).expand(n).clone()
        if bool((r <= 0).any()):
            raise InputError(f"resonance must be > 0, got {r.tolist()}")
        mx = _tensor(mix, torch.float64).expand(n, 3).clone()
        dt = grid.dtype
        _register(self, "raw_freq", self.freq_range.to_raw(fc).to(dt), learnable)
        _register(self, "raw_resonance", inverse_positive_map(r).to(dt), learnable)
        _register(self, "mix", mx.to(dt), learnable)

    def diagonal_response(self) -> Tensor:
        fc = self.freq_range.from_raw(self.raw_freq)
        g = torch.tan(math.pi * fc / self.grid.sample_rate)
        r = positive_map(self.raw_resonance)
        zi = self.grid.zinv.unsqueeze(-1)
        cdt = self.grid.complex_dtype
        g, r = g.to(cdt), r.to(cdt)
        m = self.mix.to(cdt)
        num = (m[:, 0] * g * g * (1 + zi) ** 2 + m[:, 1] * g * (1 - zi * zi)
               + m[:, 2] * (1 - zi) ** 2)
        den = (1 + g * g + 2 * r * g) + 2 * (g * g - 1) * zi + (1 + g * g - 2 * r * g) * zi * zi
        return num / den

