"""Import helpers for the peer libraries, with the shims some of them need on current packages.

Each ``import_<peer>()`` returns the peer's top-level module (its benchmarked submodules already
imported, so ``import_torchsynth().synth.Voice`` works) or ``None`` when the peer is not installed
or fails to import (a line on stderr says why; the benchmark then reports our side only). Nothing
here patches site-packages: the shims are modules placed in ``sys.modules`` before the import, and
only when the real module is missing.

Shims:

- torchsynth 1.0.2 imports ``pkg_resources`` (gone from recent setuptools) for one call,
  ``resource_string``, and ``pytorch_lightning.core.lightning.LightningModule`` (moved to
  ``pytorch_lightning.LightningModule`` in Lightning 2). Both are provided when missing.
- flamo 0.2.20 lists torchaudio as a requirement, but only ``flamo.auxiliary.filterbank``
  imports it, and the benchmarked paths (``flamo.processor``, ``flamo.optimize.loss``) do not.
  The only torchaudio wheel matching torch 2.13 is a CUDA build that does not load on CPU torch,
  so the bench venv does not install it. If some flamo module nevertheless needs it at import
  time, a stub is placed that raises ``ImportError`` on first use: nothing runs without it
  silently.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import sys
import types
from collections.abc import Callable
from types import ModuleType

PEERS: dict[str, str] = {
    # import name -> distribution name (for versions)
    "flamo": "flamo",
    "auraloss": "auraloss",
    "dasp_pytorch": "dasp-pytorch",
    "torchcomp": "torchcomp",
    "torchlpc": "torchlpc",
    "torchsynth": "torchsynth",
    "pedalboard": "pedalboard",
}


def _unavailable(name: str, exc: BaseException) -> None:
    print(f"[peer {name} unavailable: {type(exc).__name__}: {exc}]", file=sys.stderr)


def _import(name: str, submodules: tuple[str, ...] = ()) -> ModuleType | None:
    try:
        mod = importlib.import_module(name)
        for sub in submodules:
            importlib.import_module(f"{name}.{sub}")
    except Exception as exc:  # peers fail in many ways on mismatched versions
        _unavailable(name, exc)
        return None
    return mod


def peer_version(name: str) -> str | None:
    """Installed version of a peer (import name, e.g. ``"dasp_pytorch"``), or None."""
    try:
        return importlib.metadata.version(PEERS.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------- shims


def _module_importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _shim_pkg_resources() -> None:
    """Provide ``pkg_resources.resource_string`` when setuptools no longer ships pkg_resources."""
    if "pkg_resources" in sys.modules or _module_importable("pkg_resources"):
        return
    shim = types.ModuleType("pkg_resources")

    def resource_string(package: str, resource: str) -> bytes:
        # like pkg_resources: relative to the folder of the named module (package or not)
        module = sys.modules.get(package) or importlib.import_module(package)
        if hasattr(module, "__path__"):
            path = importlib.resources.files(package).joinpath(resource)
        else:
            path = importlib.resources.files(package.rpartition(".")[0]).joinpath(resource)
        if not path.is_file():
            raise FileNotFoundError(f"{package}:{resource}")
        return path.read_bytes()

    shim.resource_string = resource_string  # type: ignore[attr-defined]
    shim.__diffdsp_shim__ = True  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim


def _shim_lightning_core_lightning() -> None:
    """Alias ``pytorch_lightning.core.lightning`` (Lightning 1.x path) to the current module."""
    if _module_importable("pytorch_lightning.core.lightning"):
        return
    import pytorch_lightning

    shim = types.ModuleType("pytorch_lightning.core.lightning")
    shim.LightningModule = pytorch_lightning.LightningModule  # type: ignore[attr-defined]
    shim.__diffdsp_shim__ = True  # type: ignore[attr-defined]
    sys.modules["pytorch_lightning.core.lightning"] = shim
    pytorch_lightning.core.lightning = shim  # type: ignore[attr-defined]


def _shim_torchaudio() -> None:
    """A torchaudio stand-in that fails loudly on use (see the module docstring)."""
    if "torchaudio" in sys.modules or _module_importable("torchaudio"):
        return
    shim = types.ModuleType("torchaudio")

    def __getattr__(attr: str) -> object:
        raise ImportError(
            f"torchaudio.{attr} is not available in the bench venv (torchaudio is not installed: "
            "its only wheel for this torch is a CUDA build)"
        )

    shim.__getattr__ = __getattr__  # type: ignore[attr-defined]
    shim.__diffdsp_shim__ = True  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = shim


# ------------------------------------------------------------------------------------- imports


def import_flamo() -> ModuleType | None:
    """flamo with ``processor.dsp``, ``processor.system``, ``optimize.loss`` and ``functional``."""
    subs = ("processor.dsp", "processor.system", "optimize.loss", "functional")
    try:
        importlib.import_module("flamo")
    except ModuleNotFoundError as exc:
        if exc.name != "torchaudio":
            _unavailable("flamo", exc)
            return None
        _shim_torchaudio()
    except Exception as exc:
        _unavailable("flamo", exc)
        return None
    return _import("flamo", subs)


def import_auraloss() -> ModuleType | None:
    """auraloss with ``freq`` and ``time``."""
    return _import("auraloss", ("freq", "time"))


def import_dasp() -> ModuleType | None:
    """dasp_pytorch with ``functional``."""
    return _import("dasp_pytorch", ("functional",))


def import_torchcomp() -> ModuleType | None:
    """torchcomp (``compexp_gain``, ``limiter_gain``, ``avg``, ``ms2coef``)."""
    return _import("torchcomp")


def import_torchlpc() -> ModuleType | None:
    """torchlpc (``sample_wise_lpc``)."""
    return _import("torchlpc")


def import_torchsynth() -> ModuleType | None:
    """torchsynth with ``config``, ``module``, ``synth`` (shims: pkg_resources, Lightning 2)."""
    try:
        _shim_pkg_resources()
        _shim_lightning_core_lightning()
    except Exception as exc:
        _unavailable("torchsynth", exc)
        return None
    return _import("torchsynth", ("config", "module", "synth"))


def import_pedalboard() -> ModuleType | None:
    """pedalboard (C++ effects, no gradients)."""
    return _import("pedalboard")


IMPORTERS: dict[str, Callable[[], ModuleType | None]] = {
    "flamo": import_flamo,
    "auraloss": import_auraloss,
    "dasp_pytorch": import_dasp,
    "torchcomp": import_torchcomp,
    "torchlpc": import_torchlpc,
    "torchsynth": import_torchsynth,
    "pedalboard": import_pedalboard,
}
