"""``diffdsp export``: fitted artefacts as plain data a real-time engine can load.

A task's fitted parameters (``fdn.json`` of ``reverb fit``, ``allpass.json`` of ``align``,
``params.json`` of ``style``, ``patch.json`` of ``match``) are enough to rebuild the diffdsp
module, but an engine written in C++, Rust or Faust wants the numbers it runs: filter
coefficients, delay lengths, matrices and gains. :func:`export_artefact` turns each artefact into
one JSON document (``format: "diffdsp.export/1"``) of such numbers, all float64, and
:func:`write_export` writes it as ``export.json`` and optionally ``export.npz`` (numpy arrays,
keys joined with ``/``) and ``export.h`` (a C header of ``static const double/long`` arrays).

Conventions of every export:

- ``sample_rate`` in Hz; every coefficient is designed for that rate.
- Filters are second-order sections in the scipy layout, one row ``[b0, b1, b2, a0, a1, a2]`` per
  section with ``a0 = 1``, run in series with zero initial state
  (``scipy.signal.sosfilt``): ``y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]``.
- Each export carries a ``signal_flow`` text giving the exact processing order.

Kinds:

- ``"fdn"`` (reverb): integer delays, feedback matrix, input/output/direct gains, per-line
  attenuation SOS ``(N, K, 6)``, tone-correction SOS ``(K, 6)`` and the pre-delay.
- ``"allpass"`` (align): integer delay, polarity and the all-pass SOS cascade.
- ``"style"``: parametric EQ SOS, compressor settings (with one-pole coefficients) and gain.
- ``"patch"`` (match): the module graph with every parameter in physical units, and the SOS of
  every filter whose cutoff is not modulated.

References:
    Jot & Chaigne, AES 1991 (FDN); Bargum et al., DAFx 2023 (all-pass alignment); Steinmetz et
    al., JAES 2022 (EQ/compressor chain); Giannoulis et al., JAES 2012 (compressor); RBJ Audio EQ
    Cookbook; scipy.signal.sosfilt (SOS layout).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from diffdsp._validation import InputError
from diffdsp.params import ParamRange

__all__ = [
    "FORMAT",
    "FORMATS",
    "detect_kind",
    "export_allpass",
    "export_artefact",
    "export_fdn",
    "export_patch",
    "export_style",
    "load_artefact",
    "run",
    "write_export",
]

#: Format tag of every export document.
FORMAT = "diffdsp.export/1"
#: Output formats of :func:`write_export` (``export.json`` is always written).
FORMATS = ("json", "npz", "c")

# file names a task writes, in the order a folder is searched
_ARTEFACT_FILES = ("fdn.json", "allpass.json", "params.json", "patch.json")

_PathLike = str | Path


def _f64(t: torch.Tensor) -> list[Any]:
    out: list[Any] = t.detach().to(torch.float64).cpu().tolist()
    return out


def _normalise_sos(sos: torch.Tensor) -> torch.Tensor:
    """Divide each section by its ``a0`` (engines assume ``a0 = 1``)."""
    sos = sos.to(torch.float64)
    return sos / sos[..., 3:4]


def detect_kind(data: Any) -> str:
    """The artefact kind of a parsed JSON document: ``fdn``, ``allpass``, ``style`` or ``patch``.

    Args:
        data: the parsed JSON.

    Returns:
        The kind.

    Raises:
        InputError: the document is none of the known artefacts.

    Examples:
        >>> detect_kind({"format": "diffdsp.patch/1"})
        'patch'
        >>> detect_kind({"type": "diffdsp.lti.FDN"})
        'fdn'
    """
    if isinstance(data, dict):
        if data.get("type") == "diffdsp.lti.FDN":
            return "fdn"
        if str(data.get("format", "")).startswith("diffdsp.patch/"):
            return "patch"
        if "sos" in data and "polarity" in data and "sample_rate" in data:
            return "allpass"
        if data.get("chain") == ["eq", "compressor", "gain"] and "settings" in data:
            return "style"
    raise InputError(
        "not a diffdsp artefact: expected fdn.json (reverb fit), allpass.json (align), "
        "params.json (style) or patch.json (match)"
    )


def load_artefact(path: _PathLike) -> tuple[str, dict[str, Any], Path, dict[str, Any] | None]:
    """Read an artefact file, or find the one in a task's output folder.

    Args:
        path: an artefact JSON file, or a task output folder holding exactly one of
            ``fdn.json``, ``allpass.json``, ``params.json``, ``patch.json``.

    Returns:
        ``(kind, data, file, result)``: ``result`` is the folder's ``result.json`` (or None).

    Raises:
        InputError: missing, unreadable, corrupt or unknown artefact; a folder with none or
            several artefacts.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        found = [p / name for name in _ARTEFACT_FILES if (p / name).is_file()]
        if not found:
            raise InputError(f"{p}: no artefact in this folder (expected one of "
                             f"{', '.join(_ARTEFACT_FILES)})")
        if len(found) > 1:
            raise InputError(f"{p}: several artefacts in this folder "
                             f"({', '.join(f.name for f in found)}); name the file to export")
        p = found[0]
    data = _read_json(p)
    kind = detect_kind(data)
    result = None
    res_path = p.parent / "result.json"
    if res_path.is_file():
        try:
            parsed = json.loads(res_path.read_text(encoding="utf-8"))
            result = parsed if isinstance(parsed, dict) else None
        except (OSError, ValueError):
            result = None  # a damaged result.json only loses optional settings
    return kind, data, p, result


def _read_json(p: Path) -> Any:
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a JSON text file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise InputError(f"{p}: empty file")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None


def _bad(kind: str, exc: BaseException) -> InputError:
    return InputError(f"not a valid {kind} artefact: missing or bad field {exc}")


# ------------------------------------------------------------------------------------ FDN


def export_fdn(data: Mapping[str, Any]) -> dict[str, Any]:
    """Engine data of an FDN (``fdn.json`` of ``diffdsp reverb fit``).

    The network (float64 throughout) runs, per sample ``n`` with input ``x``:
    ``v_i = sosfilt(attenuation_sos[i], s_i[n - m_i])`` (the delayed line output through its
    attenuation filter, state kept per line), ``r[n] = sum_i c_i v_i``,
    ``s_i[n] = b_i x[n] + sum_j A_ij v_j``; the output is
    ``y[n] = sosfilt(tone_sos, r)[n] + d x[n]``, and the whole output is delayed by
    ``predelay_samples``.

    Args:
        data: the parsed ``fdn.json``.

    Returns:
        The export document (``kind: "fdn"``).

    Raises:
        InputError: a field is missing or invalid, or the delays are not integers.

    Examples:
        >>> from diffdsp.lti.fdn import build_fdn
        >>> fdn = build_fdn(16000, n_lines=4, nfft=2**10, attenuation="homogeneous", t60_s=0.3)
        >>> doc = export_fdn(fdn.to_dict())
        >>> doc["kind"], len(doc["delay_samples"]), len(doc["attenuation"]["sos"][0][0])
        ('fdn', 4, 6)

    References:
        Jot & Chaigne, AES 1991.
    """
    from diffdsp.lti.fdn import FDN

    fdn = FDN.from_dict({**data, "dtype": "float64"})  # InputError names the bad field
    m = fdn.delays.samples.detach()
    if not torch.equal(m, torch.round(m)):
        raise InputError(f"the FDN has fractional delays {m.tolist()}; an engine needs integer "
                         "delays (fit with integer delays)")
    n = fdn.n_lines
    with torch.no_grad():
        if fdn.attenuation is not None:
            att_sos = _normalise_sos(fdn.attenuation.sos())
        else:
            att_sos = torch.tensor([1.0, 0, 0, 1.0, 0, 0], dtype=torch.float64).expand(n, 1, 6)
        tone_sos = _normalise_sos(fdn.tone.sos()[0]) if fdn.tone is not None else None
        matrix = fdn.matrix.static_matrix().to(torch.float64)
    att_info = dict(data.get("attenuation", {"kind": "none"}))
    try:
        predelay = int(data.get("predelay_samples", 0))
        length = data.get("length_samples")
    except (TypeError, ValueError) as exc:
        raise _bad("FDN", exc) from None
    return {
        "format": FORMAT,
        "kind": "fdn",
        "sample_rate": int(fdn.grid.sample_rate),
        "n_lines": n,
        "delay_samples": [int(v) for v in m.tolist()],
        "feedback_matrix": _f64(matrix),
        "input_gains": _f64(fdn.input_gains),
        "output_gains": _f64(fdn.output_gains),
        "direct_gain": float(fdn.direct_gain.detach()),
        "predelay_samples": predelay,
        "length_samples": None if length is None else int(length),
        "attenuation": {
            "kind": att_info.get("kind", "none"),
            "sos": _f64(att_sos),
            "t60_s": att_info.get("t60_s", att_info.get("t60_dc_s")),
            "center_hz": att_info.get("center_hz"),
        },
        "tone": None if tone_sos is None else {
            "sos": _f64(tone_sos),
            "gain_db": data.get("tone_gain_db"),
            "center_hz": data.get("tone_center_hz"),
        },
        "signal_flow": (
            "per sample n: v_i = sosfilt(attenuation.sos[i], s_i[n - delay_samples[i]]) for each "
            "line i (own filter state per line); r = sum_i output_gains[i] * v_i; "
            "s_i[n] = input_gains[i] * x[n] + sum_j feedback_matrix[i][j] * v_j; "
            "y[n] = sosfilt(tone.sos, r)[n] + direct_gain * x[n] (tone: identity when null); "
            "finally delay y by predelay_samples. Delay lines start at zero."
        ),
    }


# ------------------------------------------------------------------------------ all-pass


def export_allpass(data: Mapping[str, Any]) -> dict[str, Any]:
    """Engine data of a phase-alignment filter (``allpass.json`` of ``diffdsp align``).

    Args:
        data: the parsed ``allpass.json``.

    Returns:
        The export document (``kind: "allpass"``).

    Raises:
        InputError: a field is missing or invalid.

    Examples:
        >>> doc = export_allpass({"sample_rate": 48000, "delay_samples": 3, "polarity": -1,
        ...                       "sos": [[0.5, 1.0, 0.0, 1.0, 0.5, 0.0]]})
        >>> doc["kind"], doc["n_sections"], doc["polarity"]
        ('allpass', 1, -1)

    References:
        Bargum et al., DAFx 2023.
    """
    try:
        sr = int(data["sample_rate"])
        delay = int(data.get("delay_samples", 0))
        pol = int(data.get("polarity", 1))
        sos = torch.tensor(data.get("sos", []), dtype=torch.float64).reshape(-1, 6)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise _bad("all-pass", exc) from None
    if pol not in (-1, 1):
        raise InputError(f"not a valid all-pass artefact: polarity must be +1 or -1, got {pol}")
    if sr <= 0 or not bool(torch.isfinite(sos).all()) or bool((sos[:, 3] == 0).any()):
        raise InputError("not a valid all-pass artefact: bad sample_rate or non-finite sos")
    sections = []
    for s in data.get("sections", []) or []:
        if isinstance(s, dict):
            sections.append({k: v for k, v in s.items() if k != "sos"})
    return {
        "format": FORMAT,
        "kind": "allpass",
        "sample_rate": sr,
        "delay_samples": delay,
        "polarity": pol,
        "n_sections": int(sos.shape[0]),
        "sos": _f64(_normalise_sos(sos)) if sos.shape[0] else [],
        "sections": sections,
        "signal_flow": (
            "y = polarity * sosfilt(sos, shift(x, delay_samples)); shift delays by delay_samples "
            "samples (a negative value advances, i.e. needs that much look-ahead) with zero "
            "fill; sections in series, zero initial state"
        ),
    }


# ---------------------------------------------------------------------------------- style


def _compressor_alpha(time_ms: float, sample_rate: int) -> float:
    from diffdsp.functional.dynamics import time_constant_to_coef

    return float(time_constant_to_coef(torch.tensor(time_ms, dtype=torch.float64), sample_rate))


def export_style(data: Mapping[str, Any], settings: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Engine data of a style-transfer chain (``params.json`` of ``diffdsp style``).

    Args:
        data: the parsed ``params.json``.
        settings: the ``settings`` of the run's ``result.json`` when available (they hold the
            compressor ballistics mode, which ``params.json`` does not record).

    Returns:
        The export document (``kind: "style"``): ``eq`` (bands and SOS), ``compressor``
        (physical settings, one-pole coefficients and the detector definition), ``gain``.

    Raises:
        InputError: a field is missing or invalid.

    References:
        Steinmetz et al., JAES 2022; Giannoulis et al., JAES 2012; RBJ Audio EQ Cookbook.
    """
    from diffdsp.functional.filters import parametric_eq_sos

    try:
        sr = int(data["sample_rate"])
        st = data["settings"]
        eq = {k: float(v) for k, v in st["eq"].items()}
        comp = {k: float(v) for k, v in st["compressor"].items()}
        gain_db = float(st["gain"]["gain_db"])
        names = [k[: -len("_cutoff_hz")] for k in eq if k.endswith("_cutoff_hz")]
        controls = torch.tensor([[eq[f"{b}_cutoff_hz"], eq[f"{b}_q"], eq[f"{b}_gain_db"]]
                                 for b in names], dtype=torch.float64)
        need = ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db")
        missing = [k for k in need if k not in comp]
        if missing:
            raise KeyError(f"compressor.{missing[0]}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad("style", exc) from None
    if len(names) < 2 or names[0] != "low_shelf" or names[-1] != "high_shelf":
        raise InputError("not a valid style artefact: the EQ must run from low_shelf to "
                         f"high_shelf, got bands {names}")
    sos = parametric_eq_sos(controls, sample_rate=sr)
    smoothing = str((settings or {}).get("smoothing", "exact"))
    bands = [{"name": b, "type": "lowshelf" if b == "low_shelf" else "highshelf"
              if b == "high_shelf" else "peaking", "cutoff_hz": eq[f"{b}_cutoff_hz"],
              "q": eq[f"{b}_q"], "gain_db": eq[f"{b}_gain_db"]} for b in names]
    return {
        "format": FORMAT,
        "kind": "style",
        "sample_rate": sr,
        "chain": ["eq", "compressor", "gain"],
        "eq": {"bands": bands, "sos": _f64(_normalise_sos(sos)),
               "design": "RBJ Audio EQ Cookbook shelves/peaking, q as given",
               "note": "the fit may have run the EQ by frequency sampling (an FIR approximation "
                       "of these biquads); these are the exact recursive filters"},
        "compressor": {
            **comp,
            "alpha_attack": _compressor_alpha(comp["attack_ms"], sr),
            "alpha_release": _compressor_alpha(comp["release_ms"], sr),
            "smoothing": smoothing,
            "smoothing_recorded": settings is not None and "smoothing" in settings,
            "lookahead_ms": 0.0,
            "stereo_link": True,
            "detector": (
                "s[n] = sqrt(mean over channels of x_c[n]^2) (stereo link); "
                "L = 20 log10 max(|s[n]|, 1e-7) dB (floored at -140 dB); o = L - threshold_db; "
                "knee W = knee_db: h = 0 if o < -W/2, (o + W/2)^2 / (2W) if |o| <= W/2, o if "
                "o > W/2; r[n] = (1 - 1/ratio) h (gain reduction, dB >= 0)"
            ),
            "ballistics": (
                "exact: z[n] = a z[n-1] + (1 - a) r[n] with a = alpha_attack when r[n] > "
                "z[n-1] else alpha_release, z[-1] = 0; alpha = exp(-1000 / (time_ms * "
                "sample_rate)). fir: one shared constant, the mean of attack_ms and release_ms"
            ),
            "apply": "y_c[n] = x_c[n] * 10^((makeup_db - z[n]) / 20)",
        },
        "gain": {"gain_db": gain_db, "linear": 10.0 ** (gain_db / 20.0)},
        "signal_flow": "y = gain.linear * compressor(sosfilt(eq.sos, x)), every channel through "
                       "the same EQ, one compressor detector shared by the channels",
    }


# ---------------------------------------------------------------------------------- patch


def _filter_effective_cutoff_hz(cutoff_hz: float, sample_rate: int) -> float:
    """The synth filter's running cutoff (``diffdsp.synth.modules.effective_cutoff_hz``)."""
    from diffdsp.synth.modules import effective_cutoff_hz

    return float(effective_cutoff_hz(torch.tensor(cutoff_hz, dtype=torch.float64), sample_rate))


def export_patch(data: Mapping[str, Any]) -> dict[str, Any]:
    """Engine data of a synth patch (``patch.json`` of ``diffdsp match``).

    Every module parameter is listed in physical units (the fitted ``params``, then the patch's
    ``fixed`` values, then the range defaults), with its unit. Filters whose cutoff is not
    modulated (no ``mod`` connection, or a zero ``mod_depth_oct``) get their biquad as one SOS row
    at the effective cutoff (the module's bounded map keeps it inside (10 Hz, 0.45 fs)).

    Args:
        data: the parsed ``patch.json``.

    Returns:
        The export document (``kind: "patch"``).

    Raises:
        InputError: the patch cannot be rebuilt.

    References:
        Uzrad et al., "DiffMoog", 2024; RBJ Audio EQ Cookbook.
    """
    from diffdsp.functional.filters import biquad, to_sos
    from diffdsp.synth.patch import Patch

    try:
        patch = Patch.from_dict(data)
        fitted = {k: float(v) for k, v in (data.get("params") or {}).items()}
        fixed = {k: float(v) for k, v in (data.get("fixed") or {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad("patch", exc) from None
    sr = int(patch.sample_rate)
    modules: dict[str, Any] = {}
    connections = [list(c) for c in patch.connections]
    for name, spec in data["modules"].items():
        ranges: dict[str, ParamRange] = getattr(  # noqa: B009 (ModuleDict items are Modules)
            patch.synth_modules[name], "param_ranges")
        params: dict[str, Any] = {}
        for pname, rng in ranges.items():
            key = f"{name}.{pname}"
            if key in fitted:
                value, source = fitted[key], "fitted"
            elif key in fixed:
                value, source = fixed[key], "fixed"
            else:
                value, source = float(rng.default_value), "default"
            params[pname] = {"value": value, "unit": rng.unit, "source": source}
        entry: dict[str, Any] = {"type": spec.get("type"), "config": spec.get("config", {}),
                                 "params": params}
        if entry["type"] == "filter":
            modulated = any(dst == f"{name}.mod" for _, dst in connections) and \
                params["mod_depth_oct"]["value"] != 0.0
            if not modulated:
                fc = _filter_effective_cutoff_hz(params["cutoff_hz"]["value"], sr)
                b, a = biquad(str(entry["config"].get("kind", "lowpass")),
                              cutoff_hz=torch.tensor(fc, dtype=torch.float64),
                              q=torch.tensor(params["q"]["value"], dtype=torch.float64),
                              sample_rate=sr)
                entry["effective_cutoff_hz"] = fc
                entry["sos"] = _f64(_normalise_sos(to_sos(b, a)).reshape(-1, 6))
            else:
                entry["sos"] = None
                entry["note"] = ("time-varying cutoff: cutoff_hz * 2^(mod_depth_oct * mod[n]) "
                                 "through the bounded map, RBJ biquad redesigned per sample")
        modules[name] = entry
    return {
        "format": FORMAT,
        "kind": "patch",
        "sample_rate": sr,
        "name": data.get("name", "patch"),
        "params_source": "fitted" if fitted else "defaults (the patch holds no fitted params)",
        "modules": modules,
        "connections": connections,
        "output": data["output"],
        "render_order": list(patch.order),
        "signal_flow": (
            "modules run in render_order; a connection [src, 'dst.port'] feeds src's output to "
            "that port (several into one port add); the output module's signal is the sound. "
            "Module equations: diffdsp.synth.modules (VCO: PolyBLEP oscillators; ADSR in "
            "seconds; filter: RBJ biquad; the note-off time is 75 % of the rendered length "
            "unless given)"
        ),
    }


# ------------------------------------------------------------------------------ dispatch


def export_artefact(path: _PathLike) -> dict[str, Any]:
    """Read an artefact (file or task folder) and return its export document.

    Args:
        path: artefact JSON or a task output folder (see :func:`load_artefact`).

    Returns:
        The export document, with ``source`` (file name and sha256).

    Raises:
        InputError: missing, corrupt or unknown artefact.

    Examples:
        >>> import json, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "allpass.json").write_text(json.dumps(
        ...     {"sample_rate": 16000, "delay_samples": 0, "polarity": 1, "sos": []}))
        >>> export_artefact(d)["kind"]
        'allpass'
    """
    kind, data, file, result = load_artefact(path)
    if kind == "fdn":
        doc = export_fdn(data)
    elif kind == "allpass":
        doc = export_allpass(data)
    elif kind == "style":
        settings = result.get("settings") if isinstance(result, dict) else None
        doc = export_style(data, settings if isinstance(settings, dict) else None)
    else:
        doc = export_patch(data)
    bad = [k for k, v in _flatten_numeric(doc).items() if not _all_finite(v)]
    if bad:
        raise InputError(f"{file}: the artefact holds non-finite values (in {', '.join(bad)})")
    doc["source"] = {"file": file.name,
                     "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    return doc


def _all_finite(value: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())


def _flatten_numeric(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Numeric leaves and rectangular numeric lists of ``doc``, keyed ``a/b/c``."""
    import numpy as np

    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten_numeric(v, key + "/"))
        elif isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        elif isinstance(v, int):
            out[key] = np.asarray(v, dtype=np.int64)
        elif isinstance(v, float):
            out[key] = np.asarray(v, dtype=np.float64)
        elif isinstance(v, list) and v:
            try:
                arr = np.asarray(v)
            except (TypeError, ValueError):  # ragged
                arr = None
            if arr is not None and arr.dtype.kind in "if":
                out[key] = arr.astype(np.int64 if arr.dtype.kind == "i" else np.float64)
            else:  # a list of dicts (bands, sections): index them
                for i, item in enumerate(v):
                    if isinstance(item, Mapping):
                        out.update(_flatten_numeric(item, f"{key}/{i}/"))
    return out


def _c_header(doc: Mapping[str, Any]) -> str:
    import numpy as np

    arrays = _flatten_numeric(doc)
    guard = "DIFFDSP_EXPORT_H"
    lines = [f"/* diffdsp export ({FORMAT}), kind {doc.get('kind')!s}: generated, do not edit.",
             " * SOS rows are {b0, b1, b2, a0, a1, a2} (a0 = 1), sections in series.",
             " * signal flow: " + str(doc.get("signal_flow", "")).replace("*/", "* /"),
             " */", f"#ifndef {guard}", f"#define {guard}", ""]
    for key, arr in arrays.items():
        name = "DIFFDSP_" + re.sub(r"[^A-Za-z0-9]+", "_", key).upper().strip("_")
        is_int = np.asarray(arr).dtype.kind == "i"
        ctype = "long" if is_int else "double"
        flat = np.asarray(arr).reshape(-1)
        for d, size in enumerate(np.shape(arr)):
            lines.append(f"#define {name}_DIM{d} {size}")
        values = ", ".join(str(int(v)) if is_int else repr(float(v)) for v in flat)
        if np.ndim(arr) == 0:
            lines.append(f"static const {ctype} {name} = {values};")
        else:
            lines.append(f"static const {ctype} {name}[{flat.size}] = {{{values}}};")
    lines += ["", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def write_export(doc: Mapping[str, Any], out_dir: _PathLike, *,
                 formats: Iterable[str] = ("json",),
                 protect: Iterable[_PathLike] = ()) -> list[str]:
    """Write an export document as ``export.json`` (always), ``export.npz`` and ``export.h``.

    Args:
        doc: the document of :func:`export_artefact`.
        out_dir: existing output folder.
        formats: any of :data:`FORMATS`.
        protect: paths never to overwrite (the artefact read).

    Returns:
        The names of the files written.
    """
    import io as _io

    import numpy as np

    from diffdsp.io import atomic_write_bytes, atomic_write_text

    fmts = list(formats)
    for f in fmts:
        if f not in FORMATS:
            raise InputError(f"format must be one of {', '.join(FORMATS)}, got {f!r}")
    out = Path(out_dir)
    protect = list(protect)
    files = ["export.json"]
    atomic_write_text(out / "export.json", json.dumps(doc, indent=2) + "\n", protect=protect)
    if "npz" in fmts:
        buf = _io.BytesIO()
        np.savez(buf, **_flatten_numeric(doc))
        atomic_write_bytes(out / "export.npz", buf.getvalue(), protect=protect)
        files.append("export.npz")
    if "c" in fmts:
        atomic_write_text(out / "export.h", _c_header(doc), protect=protect)
        files.append("export.h")
    return files


def run(artefact: _PathLike, out_dir: _PathLike, *, formats: Iterable[str] = ("json",),
        progress: Any = None) -> Any:
    """``diffdsp export ARTEFACT --out DIR``: export a fitted artefact for a real-time engine.

    Args:
        artefact: an artefact JSON or a task output folder.
        out_dir: output folder (created if missing; may be the artefact's folder).
        formats: any of :data:`FORMATS` (``export.json`` is always written).
        progress: unused (accepted for the CLI).

    Returns:
        A :class:`~diffdsp.tasks._common.TaskResult` whose ``result`` is the export document.
    """
    from diffdsp.tasks._common import TaskResult, prepare_out_dir

    fmts = list(formats)
    for f in fmts:
        if f not in FORMATS:
            raise InputError(f"format must be one of {', '.join(FORMATS)}, got {f!r}")
    doc = export_artefact(artefact)  # read and check before creating anything
    src = Path(artefact)
    src_file = src / doc["source"]["file"] if src.is_dir() else src
    out = prepare_out_dir(out_dir, [src_file])
    files = write_export(doc, out, formats=fmts, protect=[src_file])
    return TaskResult(task="export", out_dir=out, result=doc, files=files)
