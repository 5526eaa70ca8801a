"""What made a result and whether it is current: the code version of a figure (the files that compute it, without
their claims), the git commit, staleness against the code here, reduced sizes, and the figure's provenance line."""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import subprocess
import textwrap
from pathlib import Path
from typing import Sequence

from . import registry
from .codehash import compute_text
from .config import stable_hash
from .registry import Figure

PACKAGE_DIR = Path(__file__).resolve().parent



def _files_version(files: Sequence[Path]) -> str:
    """Hash of source files' paths (relative to the package) and what of them computes results (their text without
    the claims: codehash.compute_text), so an edit of a claim keeps the cached points and the result current."""
    return stable_hash([(str(f.relative_to(PACKAGE_DIR)), compute_text(f.read_text())) for f in files])



def code_version(fig: Figure) -> str:
    """Hash of the files that compute the figure (`compute_files`): editing one invalidates its cached points, while
    a new module, a benchmark or another figure's file of the same paper does not."""
    return _files_version(compute_files(fig))



def _common_sources() -> list[Path]:
    """The sources outside the paper packages that compute results: reproduce/core and datasets.py."""
    return sorted((PACKAGE_DIR / "core").glob("*.py")) + [PACKAGE_DIR / "datasets.py"]



def shared_version(fig: Figure) -> str:
    """Hash of `run_files`: keys what figures reuse from each other (paper 003's training runs: fig2 and fig7 compute
    with the same module, so they share runs); an edit of a figure's file, of a plot or a grid in the module that only
    the figure files import (cifar_family.py), or of a benchmark never invalidates them."""
    return _files_version(run_files(fig))


def run_files(fig: Figure) -> list[Path]:
    """The sources that compute one point: the module holding the figure's `compute` and what it imports from its
    paper package, reproduce/core and datasets.py (not the figure's own file, unless `compute` lives there); a
    `compute` defined outside the package (a test's) keys by `compute_files`."""
    module = inspect.getsourcefile(inspect.unwrap(fig.compute))
    path = Path(module).resolve() if module else None
    return _reachable(path, fig) if path and path.is_relative_to(PACKAGE_DIR) else compute_files(fig)



def git_out(*args: str) -> str | None:
    """git's stdout in the package's checkout, None where git or the checkout is absent or the command fails."""
    try:
        res = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None



def _git() -> dict:
    sha = git_out("rev-parse", "HEAD")
    dirty = git_out("status", "--porcelain", "--untracked-files=no", "--", ".", ":!data", ":!figures")
    return {"sha": sha or None, "dirty": bool(dirty) if sha else None}



def compute_files(fig: Figure) -> list[Path]:
    """The sources that determine a figure's CSV: its own file and what it imports (transitively) from its paper
    package, reproduce/core and datasets.py, found by reading the import statements."""
    return _reachable(registry.ROOT / fig.source, fig)


def _reachable(start: Path, fig: Figure) -> list[Path]:
    """`start` and the files it imports, transitively, from `fig`'s paper package, reproduce/core and datasets.py."""
    module = PACKAGE_DIR / "papers" / registry.paper(fig.paper).module
    todo, common = [start], set(_common_sources())
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        for level, parts, names in _relative_imports(path.read_text()):
            base = path.parent
            for _ in range(level - 1):
                base = base.parent
            target = base.joinpath(*parts)
            found = [target.with_suffix(".py")] + [target / f"{a}.py" for a in names]
            todo += [n for n in found if n in common or n.exists() and n.is_relative_to(module)]
    return sorted(seen)


@functools.lru_cache(maxsize=512)
def _relative_imports(source: str) -> tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...]:
    """(level, module parts, imported names) of every relative import in `source`, memoized on the text."""
    return tuple((node.level, tuple(node.module.split(".")) if node.module else (), tuple(a.name for a in node.names))
                 for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.level)



def staleness(fig: Figure, meta: dict) -> str | None:
    """None when the code that made a result (meta.json) is the code here; else why it is stale, in words.

    Equal code versions are current. Otherwise, with git and a clean recorded commit, the result is current when
    none of `compute_files` changed since that commit; without git it counts as stale."""
    files = compute_files(fig)
    here = _files_version(files)   # = code_version(fig), from the files read once
    if meta.get("code_version") == here:
        return None
    git = meta.get("git") or {}
    sha = git.get("sha")
    if sha and not git.get("dirty"):
        rel = [str(p.relative_to(PACKAGE_DIR)) for p in files]   # git runs in PACKAGE_DIR
        changed = git_out("diff", "--name-only", "--relative", sha, "--", *rel)
        if changed is not None:   # paths relative to PACKAGE_DIR; a file whose claims alone changed is no change
            names = [f for f in changed.splitlines() if not _same_compute(sha, f)]
            if not names:
                return None
            return (f"made at commit {sha[:7]}; since then {len(names)} of the files that compute it changed "
                    f"({', '.join(Path(f).name for f in names[:4])}{', ...' if len(names) > 4 else ''})")
    return f"made by code version {meta.get('code_version')}, the code here is {here}"



def _same_compute(sha: str, rel: str) -> bool:
    """Whether the package file `rel` computes the same at commit `sha` as here (it differs at most in its claims)."""
    old = git_out("show", f"{sha}:./{rel}")
    try:
        return old is not None and compute_text(old) == compute_text((PACKAGE_DIR / rel).read_text())
    except (OSError, SyntaxError):
        return False



def reductions(fig: Figure, cfg) -> dict[str, str]:
    """Stated settings whose value here differs from the paper preset's: {name: "paper N, here n"}."""
    def show(v) -> str:
        if isinstance(v, (tuple, list)):
            return ", ".join(map(str, v)) or "none"
        return str(v)

    paper = fig.presets.get("paper", {})
    return {f.name: f"paper {show(paper[f.name])}, here {show(getattr(cfg, f.name))}"
            for f in dataclasses.fields(cfg)
            if f.metadata.get("source") == "stated" and f.name in paper and paper[f.name] != getattr(cfg, f.name)}



def made_by(meta: dict) -> tuple[str, str]:
    """The command that made a result (preset and overrides) and its commit (short sha, +dirty), from meta.json."""
    sets = "".join(f" --set {o}" for o in meta.get("overrides", []))
    sets += " --promote" if meta.get("overrides") and not meta.get("variant") else ""   # the canonical result
    git = meta.get("git") or {}
    sha = (git.get("sha") or "?")[:7] + ("+dirty" if git.get("dirty") else "")
    return f"repro {meta.get('paper')} {meta.get('figure')} --preset {meta.get('preset')}{sets}", sha



def provenance(meta: dict) -> str:
    """One line under every figure: the command that made it (preset and overrides), the device and the commit."""
    command, sha = made_by(meta)
    reduced = "; ".join(f"{k}: {v}" for k, v in (meta.get("reduced") or {}).items())
    return (f"{command}  |  {meta.get('device', '?')}  |  git {sha}"
            + ("\n" + textwrap.fill(f"reduced: {reduced}", 160) if reduced else ""))
