"""The portable file of a learned optimizer: meta-parameters, recipe and card, without JAX.

``lofw pretrained export SOURCE --format torch --out FILE`` writes it and
:mod:`lofw.torch` reads it; it needs only the standard library and NumPy. A
portable file is a ZIP archive of::

    optimizer.json    {"format": "lofw-portable", "version": 1,
                       "optimizer": SPEC, "arrays": {NAME: {"shape", "dtype", "sha256"}},
                       "card": {...}, "fingerprint": HEX}
    arrays/NAME.npy   one NumPy array per meta-parameter (no pickles)

``SPEC`` describes a :class:`lofw.LearnedOptimizer`: ``nominal_scale_init``,
``blackbox_scale``, ``nominal_log_scale`` and one entry per slot (``null``
when empty) ``{"component": NAME, "fields": {...}}``, where ``NAME`` is the
component's registry name and ``fields`` are the component's fields, with
JSON values as they are and each array replaced by ``{"array": NAME}``.
``fingerprint`` is the SHA-256 of the canonical JSON of the spec and the
arrays' hashes; :func:`read_portable` refuses a file whose arrays or
fingerprint do not match, and any file that is not a portable file, with one
:class:`~lofw.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lofw.errors import ConfigError
from lofw.reading import MAX_BYTES

FORMAT = "lofw-portable"
VERSION = 1
MANIFEST = "optimizer.json"
#: An array of a portable file may be at most this large (the shipped optimizers hold ~200 numbers).
MAX_ARRAY_BYTES = 64 * 2**20
#: And the whole file at most this large.
MAX_FILE_BYTES = 256 * 2**20


def canonical(data: Any) -> str:
    """JSON with sorted keys and no spaces: equal data, equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def fingerprint(spec: dict[str, Any], hashes: dict[str, str]) -> str:
    """SHA-256 of the spec and of the arrays' hashes."""
    return hashlib.sha256(canonical({"optimizer": spec, "arrays": hashes}).encode()).hexdigest()


def recipe_fingerprint(spec: dict[str, Any]) -> str:
    """SHA-256 of the spec alone: equal for two files of one recipe with other meta-parameters."""
    return hashlib.sha256(canonical(spec).encode()).hexdigest()


def portable_bytes(spec: dict[str, Any], arrays: dict[str, np.ndarray], card: dict[str, Any]) -> bytes:
    """The bytes of a portable file (write them with :func:`lofw.runtime.disk.atomic_write_bytes`)."""
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    hashes = {name: _sha256(a) for name, a in arrays.items()}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": spec,
        "arrays": {n: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": hashes[n]} for n, a in arrays.items()},
        "card": card,
        "fingerprint": fingerprint(spec, hashes),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(f"arrays/{name}.npy", buffer.getvalue())
    return out.getvalue()


def read_portable(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(manifest, arrays)`` of a portable file, every hash checked.

    Raises:
        ConfigError: the file is missing, not a ZIP archive, not a lofw
            portable file (or of a newer version), or damaged (a member's
            CRC, an array's shape or SHA-256, or the fingerprint differs).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; give a file written by `lofw pretrained export ... --format torch`")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes is too large for a lofw portable file")
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = _manifest(path, archive)
            arrays = {name: _array(path, archive, name, entry) for name, entry in manifest["arrays"].items()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as e:
        raise ConfigError(f"{path}: not a readable lofw portable file (damaged or not a ZIP archive: {e})") from None
    hashes = {name: entry["sha256"] for name, entry in manifest["arrays"].items()}
    if fingerprint(manifest["optimizer"], hashes) != manifest.get("fingerprint"):
        raise ConfigError(f"{path}: the fingerprint does not match the file's contents (damaged or edited); export it again")
    return manifest, arrays


def _manifest(path: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise ConfigError(f"{path}: a ZIP archive without {MANIFEST}, so not a lofw portable file") from None
    if info.file_size > MAX_BYTES:
        raise ConfigError(f"{path}: {MANIFEST} is larger than {MAX_BYTES} bytes")
    try:
        manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: {MANIFEST} is not valid UTF-8 JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a lofw portable file ({MANIFEST} has no \"format\": \"{FORMAT}\")")
    if manifest.get("version") != VERSION:
        raise ConfigError(f"{path}: portable format version {manifest.get('version')!r}; this lofw reads version {VERSION}")
    for key, kind in (("optimizer", dict), ("arrays", dict), ("card", dict), ("fingerprint", str)):
        if not isinstance(manifest.get(key), kind):
            raise ConfigError(f"{path}: {MANIFEST}: \"{key}\" is missing or not a {kind.__name__}")
    return manifest


def _array(path: Path, archive: zipfile.ZipFile, name: str, entry: Any) -> np.ndarray:
    where = f"{path}: array {name!r}"
    member = f"arrays/{name}.npy"
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ConfigError(f"{where}: listed in {MANIFEST} but {member} is not in the archive") from None
    if info.file_size > MAX_ARRAY_BYTES:
        raise ConfigError(f"{where}: {info.file_size} bytes, more than {MAX_ARRAY_BYTES}")
    try:
        array = np.lib.format.read_array(io.BytesIO(archive.read(member)), allow_pickle=False)
    except ValueError as e:
        raise ConfigError(f"{where}: not a NumPy array file ({e})") from None
    if not isinstance(entry, dict) or list(array.shape) != entry.get("shape") or _sha256(array) != entry.get("sha256"):
        raise ConfigError(f"{where}: its shape or SHA-256 differs from {MANIFEST} (damaged); export it again")
    return array
