"""Neural proxies of audio processors and the five gradient strategies of DeepAFx-ST.

A **neural proxy** is a temporal convolutional network (TCN) whose blocks are conditioned on the
processor's normalised parameters by FiLM; it is trained on random parameters and random audio to
imitate a processor ``h(x, p)``. Being a network, it is differentiable with respect to both the
audio and the parameters, which makes it a stand-in for the gradient of a processor that is not.

DeepAFx-ST compares five ways to train a controller through an effect (Sec. 2.3):

=================  ===========================  ==========================  ===================
strategy           training forward             training backward           inference
=================  ===========================  ==========================  ===================
``autodiff``       the processor                autodiff of the processor   the processor
``spsa``           the processor                SPSA estimate               the processor
``proxy`` (NP)     the proxy                    autodiff of the proxy       the proxy
``half_hybrid``    the proxy                    autodiff of the proxy       the processor
``full_hybrid``    the processor                autodiff of the proxy       the processor
=================  ===========================  ==========================  ===================

:func:`make_strategy` returns one ``nn.Module`` for any of them, called as ``fx(x, params)``;
"training" and "inference" follow the module's ``train()`` / ``eval()`` mode (which only
matters for ``half_hybrid``).

References:
    Steinmetz, Bryan & Reiss, "Style transfer of audio effects with differentiable signal
    processing", JAES 2022, Sec. 2.3 (NP, NP-HH, NP-FH), Sec. 3.5 (TCN proxy: 4 blocks,
    kernel 13, dilations 1, 8, 64, 512, FiLM, MR-STFT + 100 x MAE loss).
    Perez et al., "FiLM: visual reasoning with a general conditioning layer", AAAI 2018.
    Steinmetz & Reiss, "Efficient neural networks for real-time modeling of analog dynamic
    range compression", AES 2022 (the conditioned causal TCN).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int, check_tensor
from diffdsp.grad.spsa import Processor, spsa

__all__ = [
    "STRATEGIES",
    "DiffProcessor",
    "ProxyConfig",
    "ProxyTCN",
    "ProxyTrainResult",
    "full_hybrid",
    "make_strategy",
    "proxy_loss",
    "train_proxy",
]

#: The five gradient strategies, in DeepAFx-ST's order of Table 1.
STRATEGIES = ("autodiff", "spsa", "proxy", "half_hybrid", "full_hybrid")


# ----------------------------------------------------------------------------------------------
# the proxy network
# ----------------------------------------------------------------------------------------------


@dataclass
class ProxyConfig:
    """Sizes of a :class:`ProxyTCN` (DeepAFx-ST: 4 blocks, kernel 13, 64 channels, growth 8).

    Attributes:
        n_params: number of normalised parameters of the imitated processor.
        channels: channels of every block.
        n_blocks: number of dilated blocks (dilation ``growth ** b``).
        kernel_size: kernel size of the dilated convolutions.
        dilation_growth: dilation factor between blocks.
        cond_dim: width of the conditioning MLP.
        residual: output ``x + net(x)`` (identity at initialisation) instead of ``net(x)``.
    """

    n_params: int
    channels: int = 64
    n_blocks: int = 4
    kernel_size: int = 13
    dilation_growth: int = 8
    cond_dim: int = 32
    residual: bool = True

    def receptive_field(self) -> int:
        """Receptive field in samples (causal)."""
        return 1 + (self.kernel_size - 1) * sum(
            self.dilation_growth ** b for b in range(self.n_blocks))


class _FiLMBlock(nn.Module):
    """Causal dilated conv -> FiLM(cond) -> PReLU, plus a 1x1 residual path."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int,
                 cond_dim: int) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.film = nn.Linear(cond_dim, 2 * c_out)
        self.act = nn.PReLU(c_out)
        self.res = nn.Conv1d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv(nn.functional.pad(x, (self.pad, 0)))
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        h = self.act((1.0 + gamma[..., None]) * h + beta[..., None])
        return h + self.res(x)


class ProxyTCN(nn.Module):
    """Causal TCN with FiLM conditioning on normalised parameters: a neural proxy ``h(x, p)``.

    Every channel of the input is processed independently (folded into the batch) with the same
    parameters. With ``residual=True`` (default) the output layer is initialised to zero, so an
    untrained proxy is the identity; DeepAFx-ST's TCN predicts the output directly (a stated
    deviation that makes short CPU trainings converge).

    Args:
        config: a :class:`ProxyConfig` (or its fields as keyword arguments).

    Shape:
        ``x`` ``(batch, channels, time)``, ``params`` ``(batch, n_params)`` in [0, 1] -> ``x``'s
        shape.

    Examples:
        >>> proxy = ProxyTCN(ProxyConfig(n_params=3, channels=8, n_blocks=2))
        >>> x = torch.randn(2, 1, 100)
        >>> y = proxy(x, torch.rand(2, 3))
        >>> y.shape, bool(torch.equal(y, x))  # identity before training
        (torch.Size([2, 1, 100]), True)

    References:
        Steinmetz et al., JAES 2022, Sec. 3.5; Perez et al., AAAI 2018 (FiLM).
    """

    def __init__(self, config: ProxyConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = config if config is not None else ProxyConfig(**kwargs)
        check_int(cfg.n_params, "n_params", minimum=1)
        check_int(cfg.channels, "channels", minimum=1)
        check_int(cfg.n_blocks, "n_blocks", minimum=1)
        check_int(cfg.kernel_size, "kernel_size", minimum=1)
        check_int(cfg.dilation_growth, "dilation_growth", minimum=1)
        self.config = cfg
        c, d = cfg.channels, cfg.cond_dim
        self.cond = nn.Sequential(nn.Linear(cfg.n_params, d), nn.PReLU(),
                                  nn.Linear(d, d), nn.PReLU(), nn.Linear(d, d), nn.PReLU())
        self.blocks = nn.ModuleList(
            _FiLMBlock(1 if b == 0 else c, c, cfg.kernel_size, cfg.dilation_growth ** b, d)
            for b in range(cfg.n_blocks))
        self.out = nn.Conv1d(c, 1, 1)
        if cfg.residual:
            nn.init.zeros_(self.out.weight)
            assert self.out.bias is not None
            nn.init.zeros_(self.out.bias)

    @property
    def n_params(self) -> int:
        """Number of normalised parameters."""
        return self.config.n_params

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        """Process ``x`` ``(batch, channels, time)`` with ``params`` ``(batch, n_params)``."""
        check_tensor(x, "x", ndim=3)
        check_tensor(params, "params", ndim=2)
        if params.shape[-1] != self.n_params or params.shape[0] not in (1, x.shape[0]):
            raise InputError(
                f"params must have shape ({x.shape[0]}, {self.n_params}), got "
                f"{tuple(params.shape)}")
        batch, channels, n = x.shape
        cond = self.cond(params.to(x.dtype).expand(batch, -1))
        cond = cond.repeat_interleave(channels, dim=0)
        h = x.reshape(batch * channels, 1, n)
        for block in self.blocks:
            h = block(h, cond)
        y = self.out(h).reshape(batch, channels, n)
        return x + y if self.config.residual else y


# ----------------------------------------------------------------------------------------------
# training a proxy
# ----------------------------------------------------------------------------------------------


def proxy_loss(estimate: Tensor, target: Tensor, *, alpha: float = 100.0) -> Tensor:
    """DeepAFx-ST's audio loss: MR-STFT (log + linear magnitudes) + ``alpha`` x MAE.

    The STFT sizes are ``32 ... 32768`` (hop ``W/2``) restricted to those shorter than the
    signal.

    Args:
        estimate: ``(..., time)``.
        target: same shape.
        alpha: weight of the time-domain mean absolute error (paper: 100).

    Returns:
        Scalar loss.

    Examples:
        >>> x = torch.randn(2, 1, 4000)
        >>> float(proxy_loss(x, x))
        0.0

    References:
        Steinmetz et al., JAES 2022, Sec. 3.4.
    """
    from diffdsp.losses.spectral import multi_resolution_stft_loss

    n = estimate.shape[-1]
    sizes = [w for w in (32, 128, 512, 2048, 8192, 32768) if w <= n]
    if not sizes:
        raise InputError(f"proxy_loss needs at least 32 samples, got {n}")
    mr = multi_resolution_stft_loss(estimate, target, fft_sizes=sizes,
                                     hop_sizes=[w // 2 for w in sizes], win_lengths=sizes,
                                     w_sc=0.0, w_log_mag=1.0, w_lin_mag=1.0)
    assert isinstance(mr, Tensor)
    return mr + alpha * (estimate - target).abs().mean()


@dataclass
class ProxyTrainResult:
    """Result of :func:`train_proxy`: the trained proxy and its loss per step."""

    proxy: ProxyTCN
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Summary for ``result.json`` (no weights)."""
        k = max(1, len(self.losses) // 10)
        return {"config": asdict(self.proxy.config), "steps": len(self.losses),
                "seconds": self.seconds,
                "loss_first": sum(self.losses[:k]) / k if self.losses else math.nan,
                "loss_last": sum(self.losses[-k:]) / k if self.losses else math.nan}


def train_proxy(
    processor: Processor,
    audio: Tensor,
    *,
    n_params: int,
    config: ProxyConfig | None = None,
    steps: int = 1000,
    batch_size: int = 8,
    n_samples: int = 16384,
    lr: float = 1e-3,
    alpha: float = 100.0,
    peak_db: float = -12.0,
    sample_params: Callable[[int, torch.Generator], Tensor] | None = None,
    seed: int = 0,
    time_budget_s: float | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> ProxyTrainResult:
    """Train a :class:`ProxyTCN` to imitate ``processor`` on random parameters and audio crops.

    Each step draws ``batch_size`` crops of ``n_samples`` from ``audio``, peak-normalises them
    to ``peak_db`` dBFS (DeepAFx-ST's headroom), draws parameters (uniform in [0, 1]^P unless
    ``sample_params`` is given), runs the processor without gradient and takes an Adam step on
    :func:`proxy_loss`.

    Args:
        processor: ``(x (batch, 1, time), params (batch, P)) -> y``, the processor to imitate.
        audio: source recordings ``(n_recordings, time)`` (each at least ``n_samples`` long).
        n_params: number of normalised parameters ``P``.
        config: proxy sizes (default :class:`ProxyConfig` with ``n_params``).
        steps: optimiser steps.
        batch_size: crops per step.
        n_samples: crop length in samples.
        lr: Adam learning rate.
        alpha: weight of the time-domain MAE in :func:`proxy_loss`.
        peak_db: peak level of the crops in dBFS.
        sample_params: ``sample_params(batch, generator) -> (batch, P)`` in [0, 1].
        seed: seed of the crops, parameters and initialisation.
        time_budget_s: stop after this many seconds.
        progress: ``progress(step, loss)``.

    Returns:
        A :class:`ProxyTrainResult` (the proxy is left in ``eval()`` mode).

    Examples:
        >>> proc = lambda x, p: x * (0.5 + p[:, :1, None])
        >>> audio = torch.randn(2, 4000)
        >>> res = train_proxy(proc, audio, n_params=1, steps=3, batch_size=2, n_samples=512,
        ...                   config=ProxyConfig(n_params=1, channels=4, n_blocks=2))
        >>> len(res.losses)
        3

    References:
        Steinmetz et al., JAES 2022, Sec. 3.5.
    """
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n_samples = check_int(n_samples, "n_samples", minimum=32)
    check_tensor(audio, "audio", ndim=2)
    if audio.shape[-1] < n_samples:
        raise InputError(
            f"audio recordings must be at least n_samples={n_samples} long, got "
            f"{audio.shape[-1]}")
    cfg = config if config is not None else ProxyConfig(n_params=n_params)
    if cfg.n_params != n_params:
        raise InputError(f"config.n_params {cfg.n_params} differs from n_params {n_params}")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        proxy = ProxyTCN(cfg)
    proxy = proxy.to(dtype=audio.dtype, device=audio.device)
    opt = torch.optim.Adam(proxy.parameters(), lr=lr)
    peak = 10 ** (peak_db / 20)
    losses: list[float] = []
    t0 = time.perf_counter()
    proxy.train()
    for step in range(steps):
        rec = torch.randint(0, audio.shape[0], (batch_size,), generator=gen)
        start = (torch.rand(batch_size, generator=gen) * (audio.shape[-1] - n_samples + 1)).long()
        idx = start[:, None] + torch.arange(n_samples)
        x = audio[rec[:, None], idx.to(audio.device)][:, None]
        x = x * (peak / x.abs().amax(-1, keepdim=True).clamp_min(1e-8))
        if sample_params is not None:
            p = sample_params(batch_size, gen).to(dtype=audio.dtype, device=audio.device)
        else:
            p = torch.rand(batch_size, n_params, generator=gen).to(audio.dtype).to(audio.device)
        with torch.no_grad():
            y = processor(x, p)
        loss = proxy_loss(proxy(x, p), y, alpha=alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(proxy.parameters(), 4.0)
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, losses[-1])
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            break
    proxy.eval()
    proxy.requires_grad_(False)
    return ProxyTrainResult(proxy=proxy, losses=losses, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------


class _FullHybrid(torch.autograd.Function):
    """Forward: the processor. Backward: the vector-Jacobian product of the proxy."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, params: Tensor, processor: Processor,
                proxy: Processor) -> Tensor:
        ctx.save_for_backward(x, params)
        ctx.proxy = proxy
        with torch.no_grad():
            return processor(x.detach(), params.detach())

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        x, params = ctx.saved_tensors
        need_x, need_p = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_p):
            return None, None, None, None
        with torch.enable_grad():
            xd = x.detach().requires_grad_(need_x)
            pd = params.detach().requires_grad_(need_p)
            y = ctx.proxy(xd, pd)
            inputs = [t for t, need in ((xd, need_x), (pd, need_p)) if need]
            grads = list(torch.autograd.grad(y, inputs, grad_y, allow_unused=True))
        gx = grads.pop(0) if need_x else None
        gp = grads.pop(0) if need_p else None
        if gx is None and need_x:
            gx = torch.zeros_like(x)
        if gp is None and need_p:
            gp = torch.zeros_like(params)
        return gx, gp, None, None


def full_hybrid(processor: Processor, proxy: Processor, x: Tensor, params: Tensor) -> Tensor:
    """Run ``processor`` forward and back-propagate through ``proxy`` (DeepAFx-ST's NP-FH).

    The output is exactly ``processor(x, params)``; the gradients with respect to ``x`` and
    ``params`` are those of ``proxy(x, params)`` at the same point.

    Args:
        processor: ``(x, params) -> y`` (need not be differentiable).
        proxy: a differentiable imitation, ``(x, params) -> y`` of the same shape.
        x: input ``(batch, channels, time)``.
        params: parameters ``(batch, P)``.

    Returns:
        ``processor(x, params)`` with the proxy's backward.

    Examples:
        >>> proc = lambda x, p: torch.round(x * p[:, :, None] * 4) / 4  # zero gradient a.e.
        >>> proxy = lambda x, p: x * p[:, :, None]
        >>> p = torch.tensor([[2.0]], requires_grad=True)
        >>> y = full_hybrid(proc, proxy, torch.full((1, 1, 3), 0.3), p)
        >>> y.sum().backward()
        >>> y.tolist(), round(float(p.grad), 4)
        ([[[0.5, 0.5, 0.5]]], 0.9)

    References:
        Steinmetz et al., JAES 2022, Sec. 2.3 (NP-FH).
    """
    check_tensor(x, "x", min_ndim=1)
    check_tensor(params, "params", ndim=2)
    out = _FullHybrid.apply(x, params, processor, proxy)
    assert isinstance(out, Tensor)
    return out


class DiffProcessor(nn.Module):
    """A processor behind one of the five gradient strategies (see :func:`make_strategy`).

    Attributes:
        strategy: the strategy name.
        processor: the real processor (``(x, params) -> y``).
        proxy: the neural proxy (``None`` for ``autodiff`` and ``spsa``); frozen.
    """

    def __init__(self, strategy: str, processor: Processor, *, proxy: nn.Module | None = None,
                 epsilon: float = 5e-4, n_samples: int = 1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.strategy = check_choice(strategy, "strategy", STRATEGIES)
        if strategy in ("proxy", "half_hybrid", "full_hybrid") and proxy is None:
            raise InputError(f"strategy {strategy!r} needs a trained neural proxy (proxy=...), "
                             "got None; train one with diffdsp.grad.proxy.train_proxy")
        if not epsilon > 0:
            raise InputError(f"epsilon must be > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.n_samples = check_int(n_samples, "n_samples", minimum=1)
        self.generator = generator
        if isinstance(processor, nn.Module):
            self.processor: Any = processor
        else:
            self._processor_fn = processor
        self.proxy = proxy
        if proxy is not None:
            proxy.requires_grad_(False)
            proxy.eval()

    def _run(self, x: Tensor, params: Tensor) -> Tensor:
        fn = self.processor if "processor" in self._modules else self._processor_fn
        out = fn(x, params)
        assert isinstance(out, Tensor)
        return out

    def _black_box(self, x: Tensor, params: Tensor) -> Tensor:
        with torch.no_grad():
            return self._run(x, params)

    def _proxy(self, x: Tensor, params: Tensor) -> Tensor:
        assert self.proxy is not None
        self.proxy.eval()  # always inference behaviour, whatever the parent's mode
        out = self.proxy(x, params)
        assert isinstance(out, Tensor)
        return out

    def uses_proxy_output(self) -> bool:
        """Whether the current mode's forward output comes from the proxy."""
        return self.strategy == "proxy" or (self.strategy == "half_hybrid" and self.training)

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        """``y = h(x, params)`` with this strategy's forward and backward (module docstring)."""
        s = self.strategy
        if s == "autodiff":
            return self._run(x, params)
        if s == "spsa":
            return spsa(self._black_box, x, params, epsilon=self.epsilon,
                        n_samples=self.n_samples, generator=self.generator)
        if self.uses_proxy_output():
            return self._proxy(x, params)
        if s == "half_hybrid":  # inference: the real processor
            return self._run(x, params)
        assert self.proxy is not None
        return full_hybrid(self._black_box, self._proxy, x, params)

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}"


def make_strategy(
    name: str,
    processor: Processor,
    *,
    proxy: nn.Module | None = None,
    epsilon: float = 5e-4,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> DiffProcessor:
    """Wrap ``processor`` behind one of :data:`STRATEGIES` (DeepAFx-ST, Sec. 2.3).

    - ``"autodiff"``: the processor itself (it must be differentiable);
    - ``"spsa"``: the processor as a black box with an SPSA backward
      (:func:`diffdsp.grad.spsa.spsa`; gradients for ``params`` only, ``epsilon`` in normalised
      units, ``n_samples`` perturbations per backward);
    - ``"proxy"``: the neural proxy replaces the processor (training and inference);
    - ``"half_hybrid"``: the proxy in training (``module.train()``), the processor in
      inference (``module.eval()``);
    - ``"full_hybrid"``: the processor's output always, the proxy's gradient
      (:func:`full_hybrid`).

    Args:
        name: one of :data:`STRATEGIES`.
        processor: ``(x, params) -> y``, e.g. an :class:`diffdsp.effects.base.Effect` driven by
            normalised parameters.
        proxy: a trained proxy (:func:`train_proxy`) for the three proxy strategies.
        epsilon: SPSA perturbation size.
        n_samples: SPSA perturbations averaged per backward pass.
        generator: random generator of the SPSA perturbations.

    Returns:
        A :class:`DiffProcessor` module: ``fx(x, params) -> y``.

    Raises:
        InputError: an unknown name, or a proxy strategy without a proxy.

    Examples:
        >>> from diffdsp.effects.gain import Gain
        >>> fx = make_strategy("spsa", Gain(16000))
        >>> p = torch.full((1, 1), 0.5, requires_grad=True)
        >>> fx(torch.ones(1, 1, 8), p).sum().backward()
        >>> p.grad is not None
        True

    References:
        Steinmetz et al., JAES 2022, Sec. 2.3.
    """
    return DiffProcessor(name, processor, proxy=proxy, epsilon=epsilon, n_samples=n_samples,
                         generator=generator)
