"""Compare every figure's smoke CSV between a base revision and the working tree: byte for byte.

    python tools/compare_smoke.py BASE_REV            # e.g. 238d7fd (or `make smoke-diff BASE=238d7fd`)
    python tools/compare_smoke.py --dirs A B          # two existing `repro all --preset smoke --out` folders

The base revision is checked out in a temporary git worktree; both trees run `repro all --preset smoke
--device cpu` with this interpreter, each into its own folder. Exit code 0 when every CSV present in the
base is present and byte-identical in the working tree (MOVED lists columns that a refactor moved out of
a CSV on purpose; those are dropped from the base before comparing the rest cell by cell), 1 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# figure CSV (relative to data/smoke) -> columns moved out of the CSV on purpose (kept in meta.json)
MOVED: dict[str, tuple[str, ...]] = {
    "random-walk-bridge/fig1.csv": ("title",),   # a string repeated on every row; rebuilt from the config
}


def run_smoke(tree: Path, out: Path) -> None:
    """`repro all --preset smoke --device cpu --out out`, importing the package from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "reproduce.cli", "all", "--preset", "smoke", "--device", "cpu", "--out", str(out)]
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)


def _rows_without(text: str, drop: tuple[str, ...]) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in drop] if rows else []
    return [[r[i] for i in keep] for r in rows]


def compare(base: Path, new: Path) -> list[str]:
    """One line per CSV under base/data/smoke: 'same', 'DIFFERENT' or 'MISSING'."""
    lines = []
    for f in sorted((base / "data" / "smoke").rglob("*.csv")):
        rel = f.relative_to(base / "data" / "smoke").as_posix()
        g = new / "data" / "smoke" / rel
        if not g.exists():
            lines.append(f"MISSING    {rel}")
            continue
        a, b = f.read_bytes(), g.read_bytes()
        if a == b:
            lines.append(f"same       {rel}")
        elif rel in MOVED and _rows_without(a.decode(), MOVED[rel]) == _rows_without(b.decode(), ()):
            lines.append(f"same       {rel} (columns left out on purpose: {', '.join(MOVED[rel])})")
        else:
            lines.append(f"DIFFERENT  {rel} ({_how(a.decode(), b.decode())})")
    return lines


def _how(a: str, b: str) -> str:
    """How two CSVs differ: the largest difference of their numbers when only numbers differ, else what does."""
    ra, rb = list(csv.reader(io.StringIO(a))), list(csv.reader(io.StringIO(b)))
    if ra[:1] != rb[:1]:
        return "header differs"
    if len(ra) != len(rb):
        return f"rows {len(ra)} vs {len(rb)}"
    worst = 0.0
    for k, (x, y) in enumerate(zip(ra[1:], rb[1:]), 2):
        if len(x) != len(y):
            return f"line {k}: {len(x)} vs {len(y)} cells"
        for u, v in zip(x, y):
            if u == v:
                continue
            try:
                fu, fv = float(u), float(v)
            except ValueError:
                return f"text differs: {u!r} vs {v!r}"
            if math.isnan(fu) != math.isnan(fv):
                return f"NaN vs {v}" if math.isnan(fu) else f"{u} vs NaN"
            worst = max(worst, abs(fu - fv))
    return f"numbers only: max |difference| {worst:.2g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", nargs="?", help="git revision to compare against")
    ap.add_argument("--dirs", nargs=2, type=Path, metavar=("BASE_OUT", "NEW_OUT"), help="compare two output folders")
    args = ap.parse_args()
    if args.dirs:
        base_out, new_out = args.dirs
    elif args.base:
        tmp = Path(tempfile.mkdtemp(prefix="smoke-diff-"))
        tree = tmp / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.base], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        try:
            base_out, new_out = tmp / "base", tmp / "new"
            run_smoke(tree, base_out)
            run_smoke(ROOT, new_out)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    else:
        ap.error("give a base revision or --dirs")
    lines = compare(base_out, new_out)
    print("\n".join(lines))
    bad = [x for x in lines if not x.startswith("same")]
    print(f"{len(lines) - len(bad)} of {len(lines)} smoke CSVs identical; {len(bad)} differences")
    return 1 if bad or not lines else 0


if __name__ == "__main__":
    sys.exit(main())
