"""tools/compare_smoke.py: identical CSVs pass; a changed byte or a missing file fails; a moved column is dropped."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("compare_smoke", ROOT / "tools" / "compare_smoke.py")
cs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cs)


def write(root: Path, rel: str, text: str) -> None:
    path = root / "data" / "smoke" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_compare_finds_every_difference(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "p/fig1.csv", "seed,x\n0,1.5\n")
    write(b, "p/fig1.csv", "seed,x\n0,1.5\n")
    write(a, "p/fig2.csv", "seed,x\n0,1.5\n")
    write(b, "p/fig2.csv", "seed,x\n0,1.6\n")
    write(a, "p/fig3.csv", "seed,x\n0,1\n")
    write(a, "q/fig1.csv", 'seed,x,title\n0,1,"a, b"\n0,2,"a, b"\n')
    write(b, "q/fig1.csv", "seed,x\n0,1\n0,2\n")
    monkeypatch.setattr(cs, "MOVED", {"q/fig1.csv": ("title",)})
    lines = dict(reversed(line.split(maxsplit=1)) for line in cs.compare(a, b))
    assert lines == {"p/fig1.csv": "same", "p/fig2.csv (numbers only: max |difference| 0.1)": "DIFFERENT",
                     "p/fig3.csv": "MISSING", "q/fig1.csv (columns left out on purpose: title)": "same"}
    write(b, "q/fig1.csv", "seed,x\n0,1\n0,3\n")
    assert "DIFFERENT  q/fig1.csv (header differs)" in cs.compare(a, b)


def test_a_difference_says_whether_only_numbers_moved():
    assert cs._how("a,x\n0,1.0\n", "a,x\n0,1.0000000000000002\n") == "numbers only: max |difference| 2.2e-16"
    assert cs._how("a,x\n0,u\n", "a,x\n0,v\n") == "text differs: 'u' vs 'v'"
    assert cs._how("a,x\n0,1\n", "a,x\n0,1\n1,2\n") == "rows 2 vs 3"
    assert cs._how("a,x\n0,nan\n", "a,x\n0,1\n") == "NaN vs 1"
    assert cs._how("a,x\n0,1\n", "a,x\n0,1,2\n") == "line 2: 2 vs 3 cells"   # a ragged row is told, not a crash
