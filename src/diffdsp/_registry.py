"""What this installation provides, discovered from the code (for ``diffdsp info``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import torch

__all__ = ["inventory"]

_GROUPS = {
    "processors": ("diffdsp.effects", "diffdsp.synth", "diffdsp.lti"),
    "losses": ("diffdsp.losses",),
}


def _submodules(package: str) -> list[ModuleType]:
    try:
        pkg = importlib.import_module(package)
    except ImportError:
        return []
    mods = [pkg]
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if info.name.startswith("_"):
            continue
        try:
            mods.append(importlib.import_module(f"{package}.{info.name}"))
        except ImportError:
            continue
    return mods


def _summary(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def inventory() -> dict[str, dict[str, str]]:
    """Group -> name -> one-line summary, for processors, losses, functionals and tasks.

    Examples:
        >>> "functionals" in inventory()
        True
    """
    inv: dict[str, dict[str, str]] = {}
    for group, packages in _GROUPS.items():
        found: dict[str, str] = {}
        for package in packages:
            for mod in _submodules(package):
                for name, cls in inspect.getmembers(mod, inspect.isclass):
                    if (issubclass(cls, torch.nn.Module) and cls.__module__.startswith(package)
                            and not name.startswith("_")):
                        found[f"{cls.__module__}.{name}"] = _summary(cls)
        inv[group] = dict(sorted(found.items()))
    funcs: dict[str, str] = {}
    for mod in _submodules("diffdsp.functional"):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__ and not name.startswith("_"):
                funcs[f"{mod.__name__}.{name}"] = _summary(fn)
    inv["functionals"] = dict(sorted(funcs.items()))
    tasks: dict[str, str] = {}
    for mod in _submodules("diffdsp.tasks")[1:]:
        tasks[mod.__name__.rsplit(".", 1)[-1]] = _summary(mod)
    inv["tasks"] = tasks
    return inv
