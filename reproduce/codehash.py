"""What of a source file computes results: its text without the claims, for cache keys and staleness.

Claims read a figure's CSV and are evaluated afresh by every `repro verify`; they never change a number in it. So a
figure's cached points and its committed result stay valid when only its claims change. `compute_text` drops from a
module every top-level statement that only the claims reach: imports from `reproduce/claims.py`, assignments to a
name containing "claims" (FIG1_CLAIMS), functions named so (family_claims), and the private (`_name`) helpers that
only those use; an import keeps only the names the kept code uses. Every public name (other modules may import it)
and everything it reaches stays, so an edit to the config, grid, compute or plot still counts.
"""
from __future__ import annotations

import ast
import functools


def _is_claims(name: str) -> bool:
    return "claims" in name.lower()


def _defined(stmt: ast.stmt) -> list[str]:
    """Top-level names a statement binds (functions, classes, assignment targets)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _claims_import(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[-1] == "claims"


@functools.lru_cache(maxsize=512)
def compute_text(source: str) -> str:
    """A canonical dump of the statements of `source` that can change a result (see the module docstring); memoized
    on the text (a plan hashes each paper's files once per figure)."""
    body = ast.parse(source).body
    names = {n: i for i, s in enumerate(body) for n in _defined(s)}
    claim_only = {i for i, s in enumerate(body)
                  if _claims_import(s) or (_defined(s) and all(_is_claims(n) for n in _defined(s)))}
    public = [i for i, s in enumerate(body) if not _defined(s) or any(not n.startswith("_") for n in _defined(s))]
    keep, todo = set(), [i for i in public if i not in claim_only]
    while todo:
        i = todo.pop()
        if i in keep:
            continue
        keep.add(i)
        for node in ast.walk(body[i]):
            j = names.get(node.id) if isinstance(node, ast.Name) and not _is_claims(node.id) else None
            if j is not None and j not in claim_only and j not in keep:
                todo.append(j)
    imports = (ast.Import, ast.ImportFrom)
    used = {n.id for i in keep if not isinstance(body[i], imports) for n in ast.walk(body[i])
            if isinstance(n, ast.Name)}
    out = []
    for i in sorted(keep):
        stmt = body[i]
        if isinstance(stmt, imports):   # only the imported names the kept code uses
            names = [a for a in stmt.names if (a.asname or a.name).split(".")[0] in used]
            if not names:
                continue
            stmt = ast.ImportFrom(stmt.module, names, stmt.level) if isinstance(stmt, ast.ImportFrom) else \
                ast.Import(names)
        out.append(ast.dump(stmt))
    return "\n".join(out)
