"""Timing and peak memory of one call, device-synchronized (used by `repro bench` and `--dry-run` cost models)."""
from __future__ import annotations

import time
from typing import Any, Callable

import torch


def host_peak_kb() -> int:
    """The process's peak resident set in KiB (VmHWM)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))


def _host_now_kb() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))


def reset_host_peak() -> None:
    """Reset the peak resident set to the current one (Linux; a no-op where that is not allowed)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux: reset VmHWM to the current RSS
    except OSError:
        pass


def seconds(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of one call of fn, device-synchronized before and after."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def _memory_baseline(device: torch.device) -> Callable[[], float]:
    """Start tracking the peak; returns a function giving the peak extra memory since then, in MiB.

    CUDA: max_memory_allocated above the allocation now; CPU: the rise of the process's peak resident set (VmHWM,
    reset now) above its resident set now."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_host_peak()
        base = _host_now_kb() * 1024

    def peak() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else host_peak_kb() * 1024
        return max(now - base, 0) / 2**20
    return peak


def once(fn: Callable[[], Any], device: torch.device) -> tuple[float, float, Any]:
    """Wall seconds of one call (no warm-up: for calls too long to repeat), peak extra memory in MiB, fn's result."""
    peak, box = _memory_baseline(device), []
    wall = seconds(lambda: box.append(fn()), device)
    return wall, peak(), box[0]


def measure(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> tuple[float, float, Any]:
    """Best-of-`repeats` wall seconds (after one warm-up call), peak extra memory in MiB of the warm-up call (see
    `_memory_baseline`), and fn's result."""
    peak = _memory_baseline(device)
    out = fn()
    mib = peak()
    best = min(seconds(fn, device) for _ in range(repeats))
    return best, mib, out
