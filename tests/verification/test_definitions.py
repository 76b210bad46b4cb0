"""The Moneyball definitions of lean_workspace/ and the .lean loader."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

import pytest

from hms_celery.errors import CatalogueError, StatementError
from hms_celery.verification.ast import NAT, REAL, Arrow, BinOp, Call, FinT, Lit, Sum, Var
from hms_celery.verification.definitions import default_workspace, load_definitions

N = Var("n", NAT)
VEC = Arrow(FinT(N), REAL)

SIGNATURES = {  # FORMULAS.md: names and argument orders
    "warScore": "{n} w a d",
    "rawReduction": "{n} p c r",
    "drp": "{n} B p c r M",
    "sps": "D J G E",
    "financialStability": "{n} s q m maxRisk",
    "marketHealth": "L T P R",
    "businessSupport": "A T M R",
    "unifiedModel": "EI FS MH BS",
    "warDashboard": "m t n r",
    "drpProjected": "B r Y",
    "conservative": "x",
}


def signature(d) -> str:
    return " ".join(f"{{{p.name}}}" if p.implicit else p.name for p in d.params)


def test_the_workspace_has_the_lean_project_files() -> None:
    ws = default_workspace()
    lakefile = (ws / "lakefile.lean").read_text()
    assert "package moneyball" in lakefile and "require mathlib" in lakefile
    assert "lean_lib Moneyball" in lakefile
    assert (ws / "lean-toolchain").read_text().startswith("leanprover/lean4:v4.")
    assert "import Moneyball.Defs" in (ws / "Moneyball.lean").read_text()
    defs = (ws / "Moneyball" / "Defs.lean").read_text()
    assert "import Mathlib" in defs and "namespace Moneyball" in defs
    assert not re.search(r"^\s*axiom\s", defs, re.M) and "sorry" not in defs


def test_every_formula_is_defined_with_its_signature() -> None:
    defs = load_definitions()
    assert {k: signature(d) for k, d in defs.items()} == SIGNATURES
    for d in defs.values():
        assert d.ret == REAL and d.body.ty == REAL and d.doc


def test_parameter_types() -> None:
    defs = load_definitions()
    w = defs["warScore"]
    assert [p.ty for p in w.params] == [NAT, VEC, VEC, VEC]
    assert [p.ty for p in defs["drp"].params] == [NAT, REAL, VEC, VEC, VEC, REAL]
    assert defs["drpProjected"].params[2].ty == NAT
    assert isinstance(w.body, Sum) and w.body.domain == FinT(N)


def test_bodies_are_exact_and_call_other_definitions() -> None:
    defs = load_definitions()
    assert defs["conservative"].body == BinOp("*", Lit(Fraction(7, 10), REAL), Var("x", REAL), REAL)
    drp = defs["drp"].body
    assert isinstance(drp, BinOp) and drp.op == "-"
    assert drp.right.left == Call(
        "rawReduction", (N, Var("p", VEC), Var("c", VEC), Var("r", VEC)), REAL
    )
    assert "warScore" in defs["warScore"].doc or "Weighted" in defs["warScore"].doc


def test_loading_is_cached() -> None:
    a, b = load_definitions(), load_definitions()
    assert a == b and a is not b  # callers get their own dict …
    assert a["warScore"] is b["warScore"]  # … of the same, parsed-once definitions


LEAN = """\
import Mathlib

/-! module doc with a `def` inside: def fake (x : ℝ) : ℝ := x -/

open BigOperators Finset

noncomputable section
namespace Demo

-- a comment
/-- Twice `x`, using a later definition. -/
def twice (x : ℝ) : ℝ :=
  Demo.plus x x

/-- Sum. -/
@[simp] noncomputable def plus (x y : ℝ) : ℝ := x + y

theorem twice_eq (x : ℝ) : twice x = 2 * x := by
  unfold twice plus
  ring

def total {k : ℕ} (v : Fin k → ℝ) : ℝ :=
  let s := ∑ i, v i
  s * 1

end Demo
end
"""


def write(ws: Path, text: str, name: str = "Demo.lean") -> Path:
    (ws / "Demo").mkdir(parents=True, exist_ok=True)
    (ws / "lakefile.lean").write_text("def notADefinition : Nat := 0\n")
    path = ws / "Demo" / name
    path.write_text(text)
    return path


def test_loader_skips_everything_but_defs(tmp_path: Path) -> None:
    write(tmp_path, LEAN)
    defs = load_definitions(tmp_path)
    assert list(defs) == ["twice", "plus", "total"]
    assert defs["twice"].doc == "Twice `x`, using a later definition."
    assert defs["plus"].doc == "Sum."
    assert defs["twice"].body == Call("plus", (Var("x", REAL), Var("x", REAL)), REAL)
    assert defs["total"].params[0].implicit
    from hms_celery.verification.frontend import parse_statement

    st = parse_statement("twice 1 = total (fun i => 2 : Fin 1 → ℝ)", definitions=defs)
    assert set(st.definitions) == {"twice", "plus", "total"}


def test_loader_reports_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "import Mathlib\n\ndef f (x : ℝ) : ℝ :=\n  x + y\n")
    with pytest.raises(StatementError) as info:
        load_definitions(tmp_path)
    e = info.value
    assert (e.line, e.column) == (4, 7) and "unknown identifier 'y'" in e.message
    assert str(e).startswith(str(path.relative_to(tmp_path)) + ":4:7:")
    write(tmp_path, "def f (x : ℝ) : ℝ :=\n  x +\n")
    with pytest.raises(StatementError) as info:
        load_definitions(tmp_path)
    assert info.value.line == 2


def test_loader_rejects_recursion_and_duplicates(tmp_path: Path) -> None:
    write(tmp_path, "def f (x : ℝ) : ℝ := f x\n")
    with pytest.raises(StatementError, match="recursive"):
        load_definitions(tmp_path)
    write(tmp_path, "def f (x : ℝ) : ℝ := x\ndef f (x : ℝ) : ℝ := x\n")
    with pytest.raises(StatementError, match="defined twice"):
        load_definitions(tmp_path)


def test_cache_follows_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "def f (x : ℝ) : ℝ := x\n")
    assert list(load_definitions(tmp_path)) == ["f"]
    path.write_text("def g (x : ℝ) : ℝ := x\n")
    os.utime(path, ns=(1, 1))
    assert list(load_definitions(tmp_path)) == ["g"]


def test_missing_workspace(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_definitions(tmp_path / "nope")
