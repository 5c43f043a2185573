"""Checks every load makes before a stored file is used: format and versions, configs, the
arrays (read in full, finite) and their shapes. Each failure is one StoredFileError naming the
file and what is wrong; nothing else escapes a load.
"""

from __future__ import annotations

import math
import re
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..analysis.metrics import VARIANTS, is_signed
from ..core.config import STRUCTURAL_FIELDS, Config
from ..version import RESULTS_VERSION
from .atomic import NewerVersionError, StoredFileError

__all__ = [
    "check_header",
    "parse_configs",
    "same_structure",
    "read_arrays",
    "require_finite",
    "require_shape",
    "storable",
    "write_npz",
    "STRAY_ARRAY",
    "finite_or_none",
    "check_stem",
    "summary_configs",
    "check_summary_arrays",
    "FLOAT16_MAX",
]

FLOAT16_MAX = float(np.finfo(np.float16).max)
# ``np.savez(fh, allow_pickle=False, **arrays)`` before numpy 2.2 took the keyword for an array
# and stored it as one (0-d, False): files this library wrote then carry it. Never written now.
STRAY_ARRAY = "allow_pickle"


def check_header(meta: object, where: Path, fmt: str, format_version: int) -> dict:
    """``meta`` as a dict of format ``fmt``, from a format version and results version this
    library reads (older ones are read; newer ones are refused, naming the version)."""
    if not isinstance(meta, dict):
        raise StoredFileError(f"{where}: holds a {type(meta).__name__}, not a {fmt} object")
    if meta.get("format") != fmt:
        raise StoredFileError(f"{where}: is not a {fmt} file (format {meta.get('format')!r})")
    for key, mine in (("format_version", format_version), ("results_version", RESULTS_VERSION)):
        have = meta.get(key, 1 if key == "format_version" else None)
        if have is None and key == "results_version":
            continue
        if isinstance(have, bool) or not isinstance(have, int) or have < 1:
            raise StoredFileError(f"{where}: {key} {have!r} is not a version number")
        if have > mine:
            raise NewerVersionError(
                f"{where}: was written by a newer monosem_lib ({key} {have}; this one reads up "
                f"to {mine}); upgrade monosem_lib to read it"
            )
    return meta


def parse_configs(items: object, where: Path, kind: Any = Config) -> list:
    """A non-empty list of config dicts as ``kind`` (``Config``, or another config class with
    ``from_dict``); any bad entry is named with its index."""
    if not isinstance(items, list) or not items:
        raise StoredFileError(f"{where}: needs a non-empty list of configs, got {items!r:.60}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise StoredFileError(f"{where}: config {i} is a {type(item).__name__}, not an object")
        try:
            out.append(kind.from_dict(item))
        except (ValueError, TypeError) as err:
            raise StoredFileError(f"{where}: config {i} is invalid: {err}") from None
    return out


def same_structure(configs: list[Config], where: Path) -> None:
    """Instances stored in one run share their structural fields."""
    first = configs[0]
    for i, c in enumerate(configs[1:], 1):
        for f in STRUCTURAL_FIELDS:
            if f != "device" and getattr(c, f) != getattr(first, f):
                raise StoredFileError(
                    f"{where}: config {i} has {f}={getattr(c, f)!r} but config 0 has "
                    f"{getattr(first, f)!r}; one run shares its structure"
                )


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, read in full (which checks the zip's CRCs), without
    unpickling anything."""
    if not path.is_file():
        raise StoredFileError(f"{path}: is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as err:  # noqa: BLE001 - zip, zlib, format errors: all mean a damaged file
        raise StoredFileError(f"{path}: is damaged or not an npz file ({err})") from None
    stray = arrays.get(STRAY_ARRAY)
    if stray is not None and stray.shape == () and stray.dtype == np.bool_:
        del arrays[STRAY_ARRAY]
        warnings.warn(
            f"{path}: ignored its array {STRAY_ARRAY!r}, a keyword that numpy older than 2.2 "
            "stored as data when an earlier monosem_lib wrote the file; the rest is whole",
            stacklevel=2,
        )
    return arrays


def require_finite(arrays: dict[str, np.ndarray], where: Path, keys: Iterable[str] | None = None):
    """Every floating array (or those in ``keys``) holds only finite values."""
    for key in arrays if keys is None else keys:
        a = arrays.get(key)
        if a is None or a.dtype.kind not in "fc":
            continue
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise StoredFileError(
                f"{where}: {key} holds {bad} non-finite value(s) (nan or inf); "
                "it cannot be used (retrain it)"
            )


def storable(arrays: dict[str, np.ndarray], where: Path) -> None:
    """Refuse to write non-finite values (a write never stores nan or inf), object arrays
    (which only a pickle could store) and an array named like the stray of old numpy."""
    for key, a in arrays.items():
        if not isinstance(key, str) or key == STRAY_ARRAY:
            raise ValueError(f"refusing to write {where}: {key!r} is not an allowed array name")
        if a.dtype.hasobject:
            raise ValueError(
                f"refusing to write {where}: {key} is an object array ({a.dtype}); only "
                "numeric and boolean arrays are stored (never a pickle)"
            )
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise ValueError(f"refusing to write {where}: {key} holds nan or inf values")


def write_npz(fh: BinaryIO, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """Write ``arrays`` into ``fh`` as an ``.npz`` (what ``np.savez`` and, with ``compress``,
    ``np.savez_compressed`` write), each array by ``numpy.lib.format.write_array`` with
    ``allow_pickle=False``: an object array raises, and no keyword is passed that a numpy
    older than 2.2 would store as an array (``STRAY_ARRAY``)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fh, mode="w", compression=method, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)


def require_shape(arrays: dict, key: str, shape: tuple, where: Path) -> None:
    """``arrays[key]`` exists and has ``shape``."""
    if key not in arrays:
        raise StoredFileError(f"{where}: lacks {key}")
    if tuple(arrays[key].shape) != tuple(shape):
        raise StoredFileError(
            f"{where}: {key} has shape {tuple(arrays[key].shape)}, but its configs need "
            f"{tuple(shape)}"
        )


def finite_or_none(value: object) -> object:
    """``value`` with every non-finite float (in nested dicts and lists) replaced by None,
    so that JSON never holds nan or inf."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]*")


def check_stem(name: object, what: str = "summary name") -> str:
    """A file stem the library writes: letters, digits, ``_ . = -``, not starting with a dot,
    no ``..``, no separators, so a stored name can never point outside its directory."""
    if not isinstance(name, str) or not _STEM.fullmatch(name) or ".." in name or len(name) > 200:
        raise ValueError(
            f"{what} {name!r} is not allowed: use letters, digits, '_', '-', '.' and '=' only "
            "(no path separators, no leading dot, no '..')"
        )
    return name


def summary_configs(meta: dict, where: Path) -> list[Config]:
    """The configs of a summary's instances; each instance must hold a config and metrics."""
    items = meta.get("instances")
    if not isinstance(items, list) or not items:
        raise StoredFileError(f"{where}: needs a non-empty list of instances")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("metrics"), dict):
            raise StoredFileError(f"{where}: instance {i} lacks its config or metrics")
    return parse_configs([i.get("config") for i in items], where)


def _instance_shapes(config: Config, neurons: str, weights: bool) -> dict[str, tuple]:
    k, N, m = config.k, config.N, config.m
    shapes: dict[str, tuple] = {"bias": (k,)}
    if neurons == "tables":
        for v in VARIANTS:
            shapes.update({f"share_{v}": (k,), f"top_{v}": (k,), f"dead_{v}": (k,)})
    elif neurons != "metrics":  # "metrics": a lean summary holds biases only
        shapes["sfa"] = (k, 2 * N if is_signed(config) else N)
    if weights:
        shapes.update(W1=(k, m), b=(k,), W2=(config.out_dim, k), P=(m, N))
    return shapes


def check_summary_arrays(
    meta: dict, configs: list[Config], arrays: dict[str, np.ndarray], where: Path
) -> None:
    """The arrays hold exactly the instances the JSON lists, with their shapes, all finite."""
    neurons = str(meta.get("neurons", "sfa"))
    indices = set()
    for key in arrays:
        stem, _, index = key.rpartition("_")
        if not stem or not index.isdigit():
            raise StoredFileError(f"{where}: holds an unexpected array {key!r}")
        indices.add(int(index))
    if indices and max(indices) >= len(configs):
        raise StoredFileError(
            f"{where}: holds arrays of instance {max(indices)} but its JSON lists "
            f"{len(configs)} instances; the pair does not belong together"
        )
    for i, c in enumerate(configs):
        weights = bool(meta["instances"][i].get("weights"))
        for key, shape in _instance_shapes(c, neurons, weights).items():
            require_shape(arrays, f"{key}_{i:03d}", shape, where)
    require_finite(arrays, where)
