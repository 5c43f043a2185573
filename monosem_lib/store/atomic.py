"""The storage rule every file the library writes follows (runs, summaries, shards, merged
summaries and the cache):

1. one writer at a time per target, through its lock file (``locks.holding``);
2. every part is written to a temporary file in the target's directory and flushed to disk;
3. the data travel as a pair: the data file (``.npz``) and the JSON that describes it, which
   is written last and carries a SHA-256 digest of the data file and of its own content
   (``seal``); a run directory lands by one rename, a summary pair by the commit in
   ``commit_pair``, where the JSON is the commit marker;
4. every load checks the digests (``verify_seal``), so a mismatched, truncated or flipped pair
   is reported with its path and never used. Files written before digests existed (format
   version 1 without ``integrity``) are still read: their arrays are read in full, which
   checks the zip's CRCs, and checked against the JSON;
5. a write that fails after training keeps the result in a rescue directory
   (``rescue_dirs``) and says where (``WriteFailed``); temporary files never stay behind.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "StoredFileError",
    "NewerVersionError",
    "WriteFailed",
    "write_temp",
    "file_digest",
    "seal",
    "verify_seal",
    "commit_pair",
    "commit_dir",
    "recover_dir",
    "recover_pair",
    "interrupted",
    "dir_leftovers",
    "pair_leftovers",
    "rescue_dirs",
    "rescue",
    "default_mode",
]

RESCUE_ENV = "MONOSEM_RESCUE_DIR"


class StoredFileError(ValueError):
    """A stored file is malformed, damaged, mismatched or unusable; the message names it."""


class NewerVersionError(StoredFileError):
    """A stored file was written by a newer version of the library than this one."""


class WriteFailed(OSError):
    """Writing a result failed (a full or read-only disk...). ``target`` is where it was
    going, ``kept`` where the result was saved instead (None if nowhere), ``move`` how to put
    it in place."""

    def __init__(self, target: Path, error: OSError, kept: Path | None, what: str, move: str = ""):
        self.target, self.kept, self.error = target, kept, error
        reason = error.strerror or str(error)
        tried = ", ".join(map(str, rescue_dirs()))
        where = (
            f"the {what} is kept in {kept}; {move or f'move it to {target}'} once that works"
            if kept is not None
            else f"the {what} could not be kept anywhere (tried {tried})"
        )
        super().__init__(error.errno, f"could not write {target}: {reason}; {where}")

    def __str__(self) -> str:
        return self.strerror or ""


def default_mode(kind: str = "file") -> int:
    """The permission bits a new file (or directory) gets under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


def write_temp(directory: Path, name: str, write: Callable[[BinaryIO], object]) -> Path:
    """Write a temporary file ``.NAME.*.tmp`` in ``directory`` with ``write(fh)``, flushed to
    disk; removed again if anything fails."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, default_mode())
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return tmp_path


def file_digest(path: Path) -> dict:
    """``{"sha256": hex digest, "bytes": size}`` of a file."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return {"sha256": h.hexdigest(), "bytes": size}


def _meta_digest(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "integrity"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def seal(meta: dict, parts: dict[str, Path]) -> dict:
    """``meta`` with an ``integrity`` entry: the digest of each part (by role) and of the
    rest of ``meta`` itself."""
    body = {k: v for k, v in meta.items() if k != "integrity"}
    integrity: dict[str, object] = {"parts": {role: file_digest(p) for role, p in parts.items()}}
    integrity["meta_sha256"] = _meta_digest(body)
    return {**body, "integrity": integrity}


def verify_seal(meta: dict, where: Path, parts: dict[str, Path]) -> bool:
    """Check the digests ``seal`` recorded against the files ``parts`` (role -> path).
    Returns False for a file written without them; raises StoredFileError on a mismatch."""
    integrity = meta.get("integrity")
    if integrity is None:
        return False
    if not isinstance(integrity, dict) or not isinstance(integrity.get("parts"), dict):
        raise StoredFileError(f"{where}: its integrity record is malformed")
    if integrity.get("meta_sha256") != _meta_digest(meta):
        raise StoredFileError(f"{where}: its content does not match its digest (edited or damaged)")
    for role, path in parts.items():
        want = integrity["parts"].get(role)
        if not isinstance(want, dict):
            raise StoredFileError(f"{where}: records no digest of its {role}")
        if not path.is_file():
            raise StoredFileError(f"{where}: its {role} {path} is missing")
        have = file_digest(path)
        if have != want:
            raise StoredFileError(
                f"{path} does not match {where} ({have['bytes']} bytes, recorded "
                f"{want.get('bytes')}; digests differ): truncated, damaged or from another write"
            )
    return True


def _json_writer(meta: dict) -> Callable[[BinaryIO], object]:
    text = json.dumps(meta, allow_nan=False).encode()
    return lambda fh: fh.write(text)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _aside(directory: Path, stem: str, ext: str) -> Path:
    return directory / f".{stem}.{ext}.aside"


def commit_pair(
    directory: Path, stem: str, write_data: Callable[[BinaryIO], object], meta: dict
) -> Path:
    """Write ``STEM.npz`` (by ``write_data``) and ``STEM.json`` (``meta`` sealed with the
    npz's digest) in ``directory``; the caller holds the lock. The old pair is moved aside
    first (JSON first: it marks a pair as whole) and removed only once the new JSON has
    landed, so at every instant the directory holds the old pair, or the new pair, or a pair
    being replaced that ``recover_pair`` turns back into the old one."""
    json_path, npz_path = directory / f"{stem}.json", directory / f"{stem}.npz"
    recover_pair(directory, stem)
    temps: list[Path] = []
    try:
        temps.append(write_temp(directory, f"{stem}.npz", write_data))
        sealed = seal(meta, {"npz": temps[0]})
        temps.append(write_temp(directory, f"{stem}.json", _json_writer(sealed)))
        for ext, current in (("json", json_path), ("npz", npz_path)):
            if current.exists():
                os.replace(current, _aside(directory, stem, ext))
        os.replace(temps[0], npz_path)
        os.replace(temps[1], json_path)  # the commit
        _fsync_dir(directory)
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        recover_pair(directory, stem)  # puts the old pair back unless the new one landed
        raise
    recover_pair(directory, stem)  # removes the old pair
    return json_path


def pair_leftovers(directory: Path, stem: str) -> list[Path]:
    """What writers of ``STEM`` killed mid-commit left in ``directory``: temporary files and
    the old pair moved aside."""
    pattern = os.path.join(glob.escape(str(directory)), f".{glob.escape(stem)}.*.tmp")
    found = [Path(p) for p in glob.glob(pattern)]
    return found + [a for e in ("json", "npz") if (a := _aside(directory, stem, e)).exists()]


def recover_pair(directory: Path, stem: str) -> None:
    """Finish or undo an interrupted commit of ``STEM`` (the caller holds the lock):
    temporary files go; the old pair moved aside goes if the new JSON landed, else it comes
    back."""
    json_path = directory / f"{stem}.json"
    committed = json_path.exists()
    for path in pair_leftovers(directory, stem):
        if path.suffix == ".tmp" or committed:
            path.unlink(missing_ok=True)
    if committed:
        return
    for ext in ("npz", "json"):
        aside = _aside(directory, stem, ext)
        if aside.exists():
            os.replace(aside, directory / f"{stem}.{ext}")


def commit_dir(directory: Path, write: Callable[[Path], None]) -> Path:
    """Fill a temporary directory with ``write(tmp)`` and rename it to ``directory`` (the
    caller holds the lock and has decided it may be replaced). An existing directory is
    renamed to ``.NAME.old`` first and removed after; ``recover_dir`` puts it back if the
    writer is killed in between."""
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    recover_dir(directory)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=parent))
    old = parent / f".{directory.name}.old"
    try:
        os.chmod(tmp, default_mode("dir"))
        write(tmp)
        if directory.exists():
            os.rename(directory, old)
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            os.rename(old, directory)
        raise
    return directory


def dir_leftovers(directory: Path) -> list[Path]:
    """What writers of ``directory`` killed mid-write left beside it: the previous directory
    moved aside (``interrupted``) and temporary directories."""
    name = glob.escape(directory.name)
    pattern = os.path.join(glob.escape(str(directory.parent)), f".{name}.tmp-*")
    return interrupted(directory) + [Path(p) for p in glob.glob(pattern)]


def interrupted(directory: Path) -> list[Path]:
    """Where an interrupted overwrite may have left the previous ``directory``: ours
    (``.NAME.old``) and the layout of earlier versions (``.NAME.old-*/run``)."""
    parent, name = directory.parent, glob.escape(directory.name)
    found = [parent / f".{directory.name}.old"]
    legacy = os.path.join(glob.escape(str(parent)), f".{name}.old-*", "run")
    found += [Path(p) for p in glob.glob(legacy)]
    return [p for p in found if p.is_dir()]


def recover_dir(directory: Path) -> Path | None:
    """Undo what a writer killed mid-overwrite of ``directory`` left (the caller holds the
    lock): the previous directory comes back if the new one never landed, else it goes, and
    temporary directories go. Returns the directory restored from, if any."""
    restored = None
    old_copies = interrupted(directory)
    for old in old_copies:
        if not directory.exists() and restored is None:
            os.rename(old, directory)
            restored = old
        else:
            shutil.rmtree(old, ignore_errors=True)
        if old.name == "run":
            shutil.rmtree(old.parent, ignore_errors=True)
    for tmp in dir_leftovers(directory):
        if tmp not in old_copies:
            shutil.rmtree(tmp, ignore_errors=True)
    return restored


def rescue_dirs() -> list[Path]:
    """Where a result that could not be written is kept instead, in order of preference:
    ``$MONOSEM_RESCUE_DIR``, the system's temporary directory, the user's cache."""
    out = [Path(os.environ[RESCUE_ENV])] if os.environ.get(RESCUE_ENV) else []
    out.append(Path(tempfile.gettempdir()) / "monosem-rescue")
    out.append(Path.home() / ".cache" / "monosem_lib" / "rescue")
    return out


def rescue(name: str, write: Callable[[Path], object]) -> Path | None:
    """Run ``write(folder)`` in a new folder under the first rescue directory where it
    succeeds; that folder, or None when every one failed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for base in rescue_dirs():
        folder = base / f"{name}-{stamp}-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=False)
            write(folder)
            return folder
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
    return None
