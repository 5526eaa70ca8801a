"""The on-disk cache of finished work: one CSV per entry, verified on read, computed once across processes.

An entry is a folder holding `<name>.csv` and, written last, `<name>.json` with the CSV's sha256 and row
count, the code version, the seconds `compute` took, and what the caller records. An entry whose JSON is missing,
unreadable, or does not match its CSV (truncated, edited, other code) is recomputed. A lock file per entry (flock,
released by the kernel when a process dies) makes a second process wait for the first instead of computing it again.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from .io import atomic_path, write_json

_LEDGER: list[tuple[str, float | None, bool]] = []   # (entry folder name, its compute seconds, computed here)


def take_ledger() -> list[tuple[str, float | None, bool]]:
    """The entries `cached` read or computed in this process since the last call: (folder name, seconds the entry's
    compute took, None where it predates the record; True where computed by this call, False where reused)."""
    out = list(_LEDGER)
    _LEDGER.clear()
    return out


class Lock:
    """An exclusive flock on `folder/.lock`, held until `release` (or until the process dies: the kernel frees it).
    One process holding it on one descriptor excludes every other descriptor, in this process as well."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self._fh = open(folder / ".lock", "a+")

    def acquire(self, block: bool = True) -> bool:
        """Take the lock (waiting for its holder when `block`); False if another holds it and not `block`."""
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        """Give the lock back and close its file (idempotent)."""
        if not self._fh.closed:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder/.lock` (blocking); a killed holder's lock is released by the kernel."""
    lock = Lock(folder)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def read(csv: Path, version: str) -> tuple[pd.DataFrame | None, dict, str | None]:
    """(frame, info, problem): the entry if it verifies; otherwise None and why ('' when there is no entry)."""
    marker = csv.with_suffix(".json")
    if not csv.exists() and not marker.exists():
        return None, {}, ""
    try:
        info = json.loads(marker.read_text())
        check = info["check"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, {}, "no valid checksum record"
    if not csv.exists():
        return None, {}, "its CSV is missing"
    if check.get("code_version") != version:
        return None, {}, "it was made by other code"
    raw = csv.read_bytes()
    if _digest(raw) != check.get("sha256"):
        return None, {}, "its CSV does not match its checksum"
    frame = pd.read_csv(io.BytesIO(raw))
    if len(frame) != check.get("rows"):
        return None, {}, f"its CSV has {len(frame)} rows, not {check.get('rows')}"
    return frame, info, None


def write(frame: pd.DataFrame, csv: Path, info: dict, version: str) -> pd.DataFrame:
    """Write the CSV, then the JSON with its checksum (last: it marks the entry as finished); the frame as read back."""
    raw = frame.to_csv(index=False).encode()
    with atomic_path(csv) as tmp:
        tmp.write_bytes(raw)
    back = pd.read_csv(io.BytesIO(raw))   # identical dtypes whether an entry was just computed or read from the cache
    write_json({**info, "check": {"sha256": _digest(raw), "rows": len(back), "code_version": version}},
               csv.with_suffix(".json"))
    return back


def cached(csv: Path, version: str, compute: Callable[[], tuple[pd.DataFrame, dict]], *, force: bool = False,
           warn: Callable[[str], None] = lambda msg: None) -> tuple[pd.DataFrame, dict, bool]:
    """The verified entry at `csv`, else compute() -> (frame, info) stored there with the seconds it took (both noted
    in the ledger, `take_ledger`). Returns (frame, info, computed)."""
    with locked(csv.parent):
        if not force:
            frame, info, problem = read(csv, version)
            if frame is not None:
                seconds = info.get("seconds")
                _LEDGER.append((csv.parent.name, seconds if isinstance(seconds, (int, float)) else None, False))
                return frame, info, False
            if problem:
                warn(f"cache entry {csv.parent.name} recomputed: {problem}")
        start = time.perf_counter()
        frame, info = compute()
        info = {**info, "seconds": round(time.perf_counter() - start, 2)}
        _LEDGER.append((csv.parent.name, info["seconds"], True))
        return write(frame, csv, info, version), info, True
