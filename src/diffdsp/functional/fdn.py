"""Feedback delay networks: closed-loop transfer on a frequency grid and the exact time recursion.

Two pure primitives that the :mod:`diffdsp.lti` modules (and the reverb task) are built from:

- :func:`fdn_transfer` evaluates ``H(z) = c^T (I - diag(g(z)) A)^{-1} diag(g(z)) b`` on every
  frequency bin, where ``g_i(z) = Gamma_i(z) z^{-m_i}`` is the (delay x attenuation) response of
  line ``i``. On CPU it runs a compiled per-bin LU elimination with partial pivoting (numba,
  bins split over threads) that also solves the adjoint system, so the backward pass is
  elementwise work and two small matrix products instead of a second batched solve. Other
  devices use ``torch.linalg.solve``.
- :func:`fdn_time` runs the same network sample by sample (integer delays, per-line SOS attenuation
  filters): a numba kernel on CPU, and on other devices an exact block recursion (blocks no longer
  than the shortest delay, the loop filters in state-space form) so that no Python loop runs over
  samples. Its backward pass is the transposed network run backwards in time (the adjoint).

References:
    Jot & Chaigne, "Digital delay networks for designing artificial reverberators", AES 1991;
    Dal Santo et al., "FLAMO: an open-source library for frequency-domain differentiable audio
    processing", ICASSP 2025 (eq. 2, the closed loop per frequency bin).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp._validation import InputError, check_int
from diffdsp.functional._parallel import run_split

__all__ = ["coprime_delays", "fdn_time", "fdn_transfer"]

_KERNELS: dict[str, Any] = {}


def _numba_kernels() -> dict[str, Any]:
    """Compile (once, cached on disk) the numba kernels."""
    if _KERNELS:
        return _KERNELS
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def solve_kernel(g, a, b, c, y, x, u, adjoint, start, stop):  # type: ignore[no-untyped-def]  # pragma: no cover
        _, m_bins, n = g.shape
        k_mat = np.empty((n, n), dtype=g.dtype)
        perm = np.empty(n, dtype=np.int64)
        work = np.empty(n, dtype=g.dtype)
        one = np.ones(1, dtype=g.dtype)[0]
        zero = one - one
        for idx in range(start, stop):
            bi = idx // m_bins
            mi = idx - bi * m_bins
            for i in range(n):
                gi = g[bi, mi, i]
                for j in range(n):
                    k_mat[i, j] = -gi * a[bi, i, j]
                k_mat[i, i] += one
                perm[i] = i
            # LU with partial pivoting, in place: P K = L U
            for k in range(n):
                p = k
                best = abs(k_mat[k, k].real) + abs(k_mat[k, k].imag)
                for i in range(k + 1, n):
                    v = abs(k_mat[i, k].real) + abs(k_mat[i, k].imag)
                    if v > best:
                        best = v
                        p = i
                if p != k:
                    for j in range(n):
                        tmp = k_mat[k, j]
                        k_mat[k, j] = k_mat[p, j]
                        k_mat[p, j] = tmp
                    tp = perm[k]
                    perm[k] = perm[p]
                    perm[p] = tp
                piv = one / k_mat[k, k]
                for i in range(k + 1, n):
                    f = k_mat[i, k] * piv
                    k_mat[i, k] = f
                    for j in range(k + 1, n):
                        k_mat[i, j] -= f * k_mat[k, j]
            # forward: L w = P r, r = g * b
            for i in range(n):
                pi = perm[i]
                acc = g[bi, mi, pi] * b[bi, pi]
                for j in range(i):
                    acc -= k_mat[i, j] * work[j]
                work[i] = acc
            # backward: U x = w
            for i in range(n - 1, -1, -1):
                acc = work[i]
                for j in range(i + 1, n):
                    acc -= k_mat[i, j] * x[bi, mi, j]
                x[bi, mi, i] = acc / k_mat[i, i]
            acc_y = zero
            for i in range(n):
                acc_y += c[bi, i] * x[bi, mi, i]
            y[bi, mi] = acc_y
            if not adjoint:
                continue
            # adjoint: K^T u = c  <=>  U^T z = c, L^T w = z, u = P^T w
            for i in range(n):
                acc = c[bi, i]
                for j in range(i):
                    acc -= k_mat[j, i] * work[j]
                work[i] = acc / k_mat[i, i]
            for i in range(n - 1, -1, -1):
                acc = work[i]
                for j in range(i + 1, n):
                    acc -= k_mat[j, i] * work[j]
                work[i] = acc
            for i in range(n):
                u[bi, mi, perm[i]] = work[i]

    @numba.njit(cache=True, nogil=True)
    def time_kernel(xin, delays, a, b, c, d, sos, y, lines, store, start, stop):  # type: ignore[no-untyped-def]  # pragma: no cover
        _, t_len = xin.shape
        n = delays.shape[0]
        n_sec = sos.shape[2]
        buf_len = 1
        for i in range(n):
            if delays[i] > buf_len:
                buf_len = delays[i]
        for bi in range(start, stop):
            buf = np.zeros((n, buf_len), dtype=xin.dtype)
            z1 = np.zeros((n, n_sec), dtype=xin.dtype)
            z2 = np.zeros((n, n_sec), dtype=xin.dtype)
            out = np.empty(n, dtype=xin.dtype)
            for t in range(t_len):
                acc_y = d[bi] * xin[bi, t]
                for i in range(n):
                    pos = t - delays[i]
                    pos = pos % buf_len
                    v = buf[i, pos]
                    for k in range(n_sec):
                        w = sos[bi, i, k, 0] * v + z1[i, k]
                        z1[i, k] = sos[bi, i, k, 1] * v - sos[bi, i, k, 4] * w + z2[i, k]
                        z2[i, k] = sos[bi, i, k, 2] * v - sos[bi, i, k, 5] * w
                        v = w
                    out[i] = v
                    if store:
                        lines[bi, i, t] = v
                    acc_y += c[bi, i] * v
                y[bi, t] = acc_y
                wpos = t % buf_len
                xt = xin[bi, t]
                for i in range(n):
                    acc = b[bi, i] * xt
                    for j in range(n):
                        acc += a[bi, i, j] * out[j]
                    buf[i, wpos] = acc

    _KERNELS["solve"] = solve_kernel
    _KERNELS["time"] = time_kernel
    return _KERNELS


def _np(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().resolve_conj().numpy())


class _FDNTransfer(torch.autograd.Function):
    """Closed-loop SISO transfer with the compiled per-bin solver and an adjoint backward."""

    @staticmethod
    def forward(g: Tensor, a: Tensor, b: Tensor, c: Tensor, adjoint: bool) -> tuple[Tensor, ...]:
        kern = _numba_kernels()["solve"]
        cdt = g.dtype
        gn = _np(g)
        an = _np(a.to(cdt))
        bn = _np(b.to(cdt))
        cn = _np(c.to(cdt))
        nb, m_bins, n = gn.shape
        y = np.empty((nb, m_bins), dtype=gn.dtype)
        x = np.empty((nb, m_bins, n), dtype=gn.dtype)
        u = np.empty((nb, m_bins, n) if adjoint else (1, 1, n), dtype=gn.dtype)
        run_split(kern, nb * m_bins, (gn, an, bn, cn, y, x, u, adjoint), 2048)
        return torch.from_numpy(y), torch.from_numpy(x), torch.from_numpy(u)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
        g, a, b, _, _ = inputs
        _, x, u = output
        ctx.save_for_backward(g, a, b, x, u)
        ctx.mark_non_differentiable(x, u)
        ctx.real_dtype = a.dtype

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_y: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        g, a, b, x, u = ctx.saved_tensors
        need_g, need_a, need_b, need_c, _ = ctx.needs_input_grad
        gy = grad_y.unsqueeze(-1)  # (B, M, 1)
        grad_g = grad_a = grad_b = grad_c = None
        if need_g:
            # delay-line inputs s = b + A x  (dy/dg_i = u_i s_i)
            s = b.to(x.dtype).unsqueeze(-2) + torch.matmul(x, a.to(x.dtype).transpose(-1, -2))
            grad_g = gy * (u * s).conj()
        if need_a or need_b:
            pw = gy * (u * g).conj()  # (B, M, N)
            if need_a:
                grad_a = torch.matmul(pw.transpose(-1, -2), x.conj()).real.to(ctx.real_dtype)
            if need_b:
                grad_b = pw.sum(-2).real.to(ctx.real_dtype)
        if need_c:
            grad_c = (gy * x.conj()).sum(-2).real.to(ctx.real_dtype)
        return grad_g, grad_a, grad_b, grad_c, None


def _transfer_torch(g: Tensor, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    n = g.shape[-1]
    eye = torch.eye(n, dtype=g.dtype, device=g.device)
    k_mat = eye - g.unsqueeze(-1) * a.to(g.dtype).unsqueeze(-3)
    rhs = (g * b.to(g.dtype).unsqueeze(-2)).unsqueeze(-1)
    x = torch.linalg.solve(k_mat, rhs).squeeze(-1)
    return (x * c.to(g.dtype).unsqueeze(-2)).sum(-1)


def fdn_transfer(
    line_response: Tensor,
    *,
    feedback_matrix: Tensor,
    input_gains: Tensor,
    output_gains: Tensor,
    method: str = "auto",
) -> Tensor:
    """Closed-loop transfer of a feedback delay network on a frequency grid.

    Computes ``H = c^T (I - diag(g) A)^{-1} diag(g) b`` per bin, where ``g`` is the response of each
    delay line including its attenuation filter (``Gamma_i(z) z^{-m_i}``), ``A`` the feedback
    matrix, ``b`` the input and ``c`` the output gains. Differentiable w.r.t. all four.

    Args:
        line_response: complex ``(..., M, N)`` response of the N delay lines on M bins.
        feedback_matrix: real ``(..., N, N)``.
        input_gains: real ``(..., N)``.
        output_gains: real ``(..., N)``.
        method: ``"auto"`` (compiled kernel on CPU, ``torch.linalg.solve`` elsewhere),
            ``"kernel"`` or ``"solve"``.

    Returns:
        complex ``(..., M)`` transfer function.

    Shape:
        leading dimensions broadcast between the four inputs.

    Examples:
        >>> m = torch.arange(4, dtype=torch.float64)
        >>> z = torch.exp(-1j * torch.pi * m / 3)           # 4 bins, one line, delay 1
        >>> h = fdn_transfer((z).unsqueeze(-1), feedback_matrix=torch.tensor([[0.5]],
        ...     dtype=torch.float64), input_gains=torch.ones(1, dtype=torch.float64),
        ...     output_gains=torch.ones(1, dtype=torch.float64))
        >>> bool(torch.allclose(h, z / (1 - 0.5 * z)))      # z^-1 / (1 - 0.5 z^-1)
        True

    References:
        Dal Santo et al., ICASSP 2025 (FLAMO), eq. 2; Jot & Chaigne, AES 1991.
    """
    if not line_response.is_complex():
        raise InputError(f"line_response must be complex (..., M, N), got {line_response.dtype}")
    if line_response.ndim < 2:
        raise InputError(f"line_response must be (..., M, N), got {tuple(line_response.shape)}")
    n = line_response.shape[-1]
    if feedback_matrix.shape[-2:] != (n, n):
        raise InputError(
            f"feedback_matrix must be (..., {n}, {n}) for {n} lines, "
            f"got {tuple(feedback_matrix.shape)}"
        )
    for name, v in (("input_gains", input_gains), ("output_gains", output_gains)):
        if v.shape[-1:] != (n,):
            raise InputError(f"{name} must be (..., {n}), got {tuple(v.shape)}")
    if method not in ("auto", "kernel", "solve"):
        raise InputError(f"method must be 'auto', 'kernel' or 'solve', got {method!r}")
    use_kernel = method == "kernel" or (method == "auto" and line_response.device.type == "cpu")
    if not use_kernel:
        return _transfer_torch(line_response, feedback_matrix, input_gains, output_gains)
    if line_response.device.type != "cpu":
        raise InputError(f"method='kernel' needs CPU tensors, got {line_response.device}")
    batch = torch.broadcast_shapes(
        line_response.shape[:-2], feedback_matrix.shape[:-2], input_gains.shape[:-1],
        output_gains.shape[:-1],
    )
    m_bins = line_response.shape[-2]
    rdt = torch.float64 if line_response.dtype == torch.complex128 else torch.float32
    g = line_response.expand(*batch, m_bins, n).reshape(-1, m_bins, n)
    a = feedback_matrix.to(rdt).expand(*batch, n, n).reshape(-1, n, n)
    b = input_gains.to(rdt).expand(*batch, n).reshape(-1, n)
    c = output_gains.to(rdt).expand(*batch, n).reshape(-1, n)
    adjoint = torch.is_grad_enabled() and any(
        t.requires_grad for t in (line_response, feedback_matrix, input_gains, output_gains))
    y = _FDNTransfer.apply(g, a, b, c, adjoint)[0]
    return y.reshape(*batch, m_bins)


def _sos_state_space(sos: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """State-space (Ad, Bd, Cd, Dd) of an SOS cascade ``(..., K, 6)`` (a0 = 1), order 2K."""
    k_sec = sos.shape[-2]
    lead = sos.shape[:-2]
    order = 2 * k_sec
    dt = sos.dtype
    ad = torch.zeros(*lead, order, order, dtype=dt, device=sos.device)
    bd = torch.zeros(*lead, order, dtype=dt, device=sos.device)
    cd = torch.zeros(*lead, order, dtype=dt, device=sos.device)
    dd = torch.ones(*lead, dtype=dt, device=sos.device)
    # cascade: section k input = output of section k-1; DF-II transposed states (z1, z2) per section
    # section k: w = b0 v + z1; z1' = b1 v - a1 w + z2; z2' = b2 v - a2 w
    # v_k = dd_{k} * u + cd_{k} . state  (output of all previous sections as a function of state)
    v_c = torch.zeros(*lead, order, dtype=dt, device=sos.device)
    v_d = torch.ones(*lead, dtype=dt, device=sos.device)
    for k in range(k_sec):
        b0, b1, b2 = sos[..., k, 0], sos[..., k, 1], sos[..., k, 2]
        a1, a2 = sos[..., k, 4], sos[..., k, 5]
        e1 = torch.zeros(order, dtype=dt, device=sos.device)
        e1[2 * k] = 1.0
        e2 = torch.zeros(order, dtype=dt, device=sos.device)
        e2[2 * k + 1] = 1.0
        w_c = b0.unsqueeze(-1) * v_c + e1
        w_d = b0 * v_d
        # z1' = b1 v - a1 w + z2
        ad[..., 2 * k, :] = b1.unsqueeze(-1) * v_c - a1.unsqueeze(-1) * w_c + e2
        bd[..., 2 * k] = b1 * v_d - a1 * w_d
        ad[..., 2 * k + 1, :] = b2.unsqueeze(-1) * v_c - a2.unsqueeze(-1) * w_c
        bd[..., 2 * k + 1] = b2 * v_d - a2 * w_d
        v_c, v_d = w_c, w_d
    cd = v_c
    dd = v_d
    return ad, bd, cd, dd


def _fdn_time_torch(
    x: Tensor, delays: list[int], a: Tensor, b: Tensor, c: Tensor, d: Tensor, sos: Tensor,
    store: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Exact block recursion: blocks of ``L = min(delays)`` samples, no per-sample loop.

    Returns the output ``(B, T)`` and, with ``store``, the line outputs ``(B, N, T)``."""
    nb, t_len = x.shape
    n = len(delays)
    blk = min(delays)
    dt = x.dtype
    dev = x.device
    ad, bd, cd, dd = _sos_state_space(sos)  # (B, N, P, P), (B, N, P), (B, N, P), (B, N)
    order = ad.shape[-1]
    # powers Ad^k, k = 0..blk  (doubling, log2(blk) matrix products)
    eye = torch.eye(order, dtype=dt, device=dev).expand(nb, n, order, order)
    pw = eye.unsqueeze(-3)  # (B, N, 1, P, P)
    cur = ad
    while pw.shape[-3] < blk + 1:
        pw = torch.cat([pw, torch.matmul(cur.unsqueeze(-3), pw)], dim=-3)
        cur = torch.matmul(cur, cur)
    pw = pw[..., : blk + 1, :, :]  # (B, N, blk+1, P, P)
    # impulse response h[0] = D, h[k] = C A^{k-1} B
    h_tail = torch.einsum("bnp,bnkpq,bnq->bnk", cd, pw[..., :blk, :, :], bd)
    h = torch.cat([dd.unsqueeze(-1), h_tail[..., : blk - 1]], dim=-1)  # (B, N, blk)
    idx = torch.arange(blk, device=dev)
    lag = idx.unsqueeze(1) - idx.unsqueeze(0)  # (blk, blk) n - k
    toeplitz = torch.where(
        lag >= 0, h[..., lag.clamp_min(0)], torch.zeros((), dtype=dt, device=dev)
    )  # (B, N, blk, blk)
    obs = torch.einsum("bnp,bnkpq->bnkq", cd, pw[..., :blk, :, :])  # (B, N, blk, P): C A^n
    a_pow_l = pw[..., blk, :, :]  # (B, N, P, P)
    # ctrl[:, :, :, k] = A^{blk-1-k} B
    ctrl = torch.einsum("bnkpq,bnq->bnpk", pw[..., :blk, :, :].flip(-3), bd)  # (B, N, P, blk)
    n_blocks = -(-t_len // blk)
    pad = n_blocks * blk - t_len
    xp = torch.nn.functional.pad(x, (0, pad))
    max_d = max(delays)
    hist = max_d + n_blocks * blk
    s_buf = torch.zeros(nb, n, hist, dtype=dt, device=dev)  # s_i[t] at index t + max_d
    dl = torch.tensor(delays, device=dev)
    gather_base = (max_d - dl).unsqueeze(-1) + idx  # (N, blk): index of s[t0 + k - m_i]
    state = torch.zeros(nb, n, order, dtype=dt, device=dev)
    ys = []
    lines = []
    for kb in range(n_blocks):
        t0 = kb * blk
        v = torch.gather(s_buf, 2, (gather_base + t0).expand(nb, n, blk))  # (B, N, blk)
        out = torch.einsum("bnij,bnj->bni", toeplitz, v) + torch.einsum(
            "bnkp,bnp->bnk", obs, state
        )
        state = torch.einsum("bnpq,bnq->bnp", a_pow_l, state) + torch.einsum(
            "bnpk,bnk->bnp", ctrl, v
        )
        xb = xp[:, t0 : t0 + blk]  # (B, blk)
        ys.append(torch.einsum("bn,bnk->bk", c, out) + d.unsqueeze(-1) * xb)
        if store:
            lines.append(out)
        s_new = b.unsqueeze(-1) * xb.unsqueeze(1) + torch.einsum("bij,bjk->bik", a, out)
        s_buf[:, :, max_d + t0 : max_d + t0 + blk] = s_new
    y = torch.cat(ys, dim=-1)[:, :t_len]
    return y, (torch.cat(lines, dim=-1)[..., :t_len] if store else None)


def _run_time(x: Tensor, delays: list[int], a: Tensor, b: Tensor, c: Tensor, d: Tensor,
              sos: Tensor, use_numba: bool, store: bool) -> tuple[Tensor, Tensor | None]:
    """One pass of the recursion on ``(B, T)`` with ``(B, ...)`` parameters (no autograd)."""
    if not use_numba:
        return _fdn_time_torch(x, delays, a, b, c, d, sos, store)
    nb, t_len = x.shape
    n = len(delays)
    xn = _np(x)
    y = np.empty((nb, t_len), dtype=xn.dtype)
    lines = np.empty((nb, n, t_len) if store else (1, 1, 1), dtype=xn.dtype)
    run_split(_numba_kernels()["time"], nb, (
        xn, np.asarray(delays, dtype=np.int64), _np(a), _np(b), _np(c), _np(d), _np(sos), y,
        lines, store), 1)
    return torch.from_numpy(y), (torch.from_numpy(lines) if store else None)


class _FDNTime(torch.autograd.Function):
    """Time-domain FDN with the adjoint backward: the transposed network (``A^T``, input and
    output gains swapped, the same line filters and delays) run backwards in time on the output
    gradient gives the input gradient and the delay-line input adjoints, from which the matrix,
    gain and filter gradients are sums of products (no graph unrolled over samples)."""

    @staticmethod
    def forward(x: Tensor, a: Tensor, b: Tensor, c: Tensor, d: Tensor, sos: Tensor,
                delays: list[int], use_numba: bool, store: bool) -> tuple[Tensor, Tensor]:
        y, lines = _run_time(x.detach(), delays, a.detach(), b.detach(), c.detach(),
                             d.detach(), sos.detach(), use_numba, store)
        return y, (lines if lines is not None else y.new_zeros(0))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
        x, a, b, c, d, sos, delays, use_numba, _ = inputs
        _, lines = output
        ctx.save_for_backward(x, a, b, c, d, sos, lines)
        ctx.delays = delays
        ctx.use_numba = use_numba
        ctx.mark_non_differentiable(lines)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_y: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        x, a, b, c, d, sos, lines = ctx.saved_tensors
        need_x, need_a, need_b, need_c, need_d, need_sos = ctx.needs_input_grad[:6]
        delays: list[int] = ctx.delays
        gy = grad_y.contiguous()
        grad_x = grad_a = grad_b = grad_c = grad_d = grad_sos = None
        if need_c:
            grad_c = torch.einsum("bt,bnt->bn", gy, lines)
        if need_d:
            grad_d = (gy * x).sum(-1)
        if not (need_x or need_a or need_b or need_sos):
            return grad_x, grad_a, grad_b, grad_c, grad_d, grad_sos, None, None, None
        # adjoint: the transposed network on the time-reversed output gradient
        xr, sbar_r = _run_time(gy.flip(-1), delays, a.transpose(-1, -2).contiguous(), c, b, d,
                               sos, ctx.use_numba, True)
        assert sbar_r is not None
        sbar = sbar_r.flip(-1)  # adjoint of the delay-line inputs s_i[t]
        if need_x:
            grad_x = xr.flip(-1)
        if need_b:
            grad_b = torch.einsum("bnt,bt->bn", sbar, x)
        if need_a:
            grad_a = torch.einsum("bit,bjt->bij", sbar, lines)
        if need_sos:
            # the filters see v_i[t] = s_i[t - m_i] and their outputs' total adjoint is
            # abar = c gy + A^T sbar: dL/dsos = d<abar, sosfilt(sos, v)>/dsos with v held fixed
            from diffdsp.functional.iir import sosfilt

            abar = c.unsqueeze(-1) * gy.unsqueeze(-2) + torch.einsum("bij,bit->bjt", a, sbar)
            s_in = b.unsqueeze(-1) * x.unsqueeze(-2) + torch.einsum("bij,bjt->bit", a, lines)
            t_len = x.shape[-1]
            v = torch.stack([torch.nn.functional.pad(s_in[:, i], (m, 0))[:, :t_len]
                             for i, m in enumerate(delays)], 1)
            with torch.enable_grad():
                sos_v = sos.detach().requires_grad_(True)
                out = sosfilt(sos_v, v)
                (grad_sos,) = torch.autograd.grad(out, sos_v, abar)
        return grad_x, grad_a, grad_b, grad_c, grad_d, grad_sos, None, None, None


def fdn_time(
    x: Tensor,
    *,
    delay_samples: Tensor | list[int],
    feedback_matrix: Tensor,
    input_gains: Tensor,
    output_gains: Tensor,
    direct_gain: Tensor | float = 0.0,
    attenuation_sos: Tensor | None = None,
    method: str = "auto",
) -> Tensor:
    """Run a feedback delay network in the time domain (exact recursion, integer delays).

    ``s[t] = b x[t] + A a[t]``, ``a_i = Gamma_i * s_i[t - m_i]``, ``y[t] = c^T a[t] + d x[t]``: the
    same system as :func:`fdn_transfer` with ``g_i(z) = Gamma_i(z) z^{-m_i}``. It renders long
    tails exactly and verifies the frequency-sampled impulse response. Differentiable w.r.t.
    ``x``, the matrix, the gains and the SOS coefficients by a custom backward: the transposed
    network (``A^T``, input and output gains swapped) run backwards in time on the output
    gradient (the same compiled kernel or block recursion), then sums of products; the filter
    coefficient gradients go through :func:`diffdsp.functional.iir.sosfilt`'s adjoint. No
    autograd graph is built over samples; the line outputs ``(..., N, time)`` are kept for the
    backward pass when the matrix, output gains or filters need a gradient.

    Args:
        x: input ``(..., time)``.
        delay_samples: N integer delay lengths ``>= 1`` (samples).
        feedback_matrix: ``(..., N, N)``.
        input_gains: ``(..., N)``.
        output_gains: ``(..., N)``.
        direct_gain: direct path gain, scalar or ``(...,)``.
        attenuation_sos: per-line attenuation filters ``(..., N, K, 6)`` (scipy SOS, a0 = 1) or
            None for none.
        method: ``"auto"`` (numba on CPU, block recursion elsewhere), ``"numba"`` or ``"torch"``.

    Returns:
        output ``(..., time)``.

    Shape:
        the leading dimensions of ``x`` and the parameters broadcast.

    Examples:
        >>> x = torch.zeros(8, dtype=torch.float64); x[0] = 1.0
        >>> y = fdn_time(x, delay_samples=[2], feedback_matrix=torch.tensor([[0.5]],
        ...     dtype=torch.float64), input_gains=torch.ones(1, dtype=torch.float64),
        ...     output_gains=torch.ones(1, dtype=torch.float64))
        >>> y.tolist()
        [0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.25, 0.0]

    References:
        Jot & Chaigne, "Digital delay networks for designing artificial reverberators", AES 1991.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating torch.Tensor, got {type(x).__name__}")
    delays = [int(v) for v in (delay_samples.tolist() if isinstance(delay_samples, Tensor)
                               else delay_samples)]
    if isinstance(delay_samples, Tensor) and delay_samples.is_floating_point():
        if not torch.equal(delay_samples, delay_samples.round()):
            raise InputError("fdn_time needs integer delay_samples (use the frequency-sampled "
                             f"path for fractional delays), got {delay_samples.tolist()}")
    n = len(delays)
    if n < 1 or min(delays) < 1:
        raise InputError(f"delay_samples must be N >= 1 integers >= 1, got {delays}")
    if method not in ("auto", "numba", "torch"):
        raise InputError(f"method must be 'auto', 'numba' or 'torch', got {method!r}")
    dt = x.dtype
    dev = x.device
    a = feedback_matrix.to(dt)
    if a.shape[-2:] != (n, n):
        raise InputError(f"feedback_matrix must be (..., {n}, {n}), got {tuple(a.shape)}")
    b = input_gains.to(dt)
    c = output_gains.to(dt)
    d = torch.as_tensor(direct_gain, dtype=dt, device=dev)
    if attenuation_sos is None:
        sos = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=dt, device=dev).expand(n, 1, 6)
    else:
        sos = attenuation_sos.to(dt)
        if sos.shape[-1] != 6 or sos.ndim < 3 or sos.shape[-3] != n:
            raise InputError(f"attenuation_sos must be (..., {n}, K, 6), got {tuple(sos.shape)}")
        sos = sos / sos[..., 3:4]
    batch = torch.broadcast_shapes(
        x.shape[:-1], a.shape[:-2], b.shape[:-1], c.shape[:-1], d.shape, sos.shape[:-3]
    )
    t_len = x.shape[-1]
    xb = x.expand(*batch, t_len).reshape(-1, t_len)
    nb = xb.shape[0]
    ab = a.expand(*batch, n, n).reshape(nb, n, n)
    bb = b.expand(*batch, n).reshape(nb, n)
    cb = c.expand(*batch, n).reshape(nb, n)
    db = d.expand(batch).reshape(nb)
    sb = sos.expand(*batch, *sos.shape[-3:]).reshape(nb, *sos.shape[-3:])
    use_numba = method == "numba" or (method == "auto" and dev.type == "cpu")
    if use_numba and dev.type != "cpu":
        raise InputError(f"method='numba' needs CPU tensors, got {dev}")
    if torch.is_grad_enabled() and any(
            t.requires_grad for t in (xb, ab, bb, cb, db, sb)):
        store = any(t.requires_grad for t in (ab, cb, sb))
        out = _FDNTime.apply(xb, ab, bb, cb, db, sb, delays, use_numba, store)[0]
    else:
        out = _run_time(xb, delays, ab, bb, cb, db, sb, use_numba, False)[0]
    return out.reshape(*batch, t_len)


def _is_prime(v: int) -> bool:
    if v < 2:
        return False
    for p in range(2, math.isqrt(v) + 1):
        if v % p == 0:
            return False
    return True


def coprime_delays(n: int, *, low: int, high: int, seed: int = 0) -> list[int]:
    """N mutually co-prime delay lengths spread over ``[low, high]`` samples (sorted).

    Draws one length per log-spaced slot of the range and moves it to the nearest value co-prime
    with those already chosen (prime powers are avoided only as far as co-primality requires).

    Args:
        n: number of delay lines.
        low: smallest allowed length (samples, >= 1).
        high: largest allowed length (samples).
        seed: random seed of the jitter inside each slot.

    Returns:
        list of N distinct, pairwise co-prime integers.

    Examples:
        >>> d = coprime_delays(4, low=100, high=400)
        >>> len(d), all(math.gcd(p, q) == 1 for i, p in enumerate(d) for q in d[i + 1:])
        (4, True)

    References:
        Schlecht & Habets, "Feedback delay networks: echo density and mixing time", IEEE/ACM TASLP
        2017 (co-prime lengths avoid coinciding echoes).
    """
    n = check_int(n, "n", minimum=1)
    low = check_int(low, "low", minimum=1)
    high = check_int(high, "high", minimum=low)
    if high - low + 1 < 4 * n:
        raise InputError(f"delay range [{low}, {high}] is too narrow for {n} co-prime delays; "
                         f"it needs at least {4 * n} values")
    rng = np.random.default_rng(seed)
    edges = np.exp(np.linspace(math.log(low), math.log(high), n + 1))
    chosen: list[int] = []
    for i in range(n):
        lo_i, hi_i = edges[i], edges[i + 1]
        start = round(lo_i + rng.uniform(0.2, 0.8) * (hi_i - lo_i))
        for off in range(0, high - low + 1):
            found = None
            for cand in (start + off, start - off):
                if low <= cand <= high and cand not in chosen and all(
                    math.gcd(cand, q) == 1 for q in chosen
                ):
                    found = cand
                    break
            if found is not None:
                chosen.append(found)
                break
        else:  # pragma: no cover - the range check above makes this unreachable in practice
            raise InputError(f"could not find {n} co-prime delays in [{low}, {high}]")
    return sorted(chosen)
