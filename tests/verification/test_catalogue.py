"""The claims catalogue: the shipped Moneyball file, old-format files, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hms_celery.errors import CatalogueError, UnknownTheoremError
from hms_celery.verification.ast import FinT, Lit
from hms_celery.verification.catalogue import (
    Claim,
    default_catalogue_path,
    find_claim,
    load_catalogue,
)
from hms_celery.verification.verdict import Verdict

FORMULAS_IDS = {  # the claim table of FORMULAS.md
    "war-bounds-original", "war-bounds-unit", "war-abs-bound", "war-zero-impact",
    "drp-conservative", "drp-upper-original", "drp-at-most-baseline", "drp-margin-08",
    "sps-bounds", "sps-weights", "sps-equal", "fs-bounds", "mh-bounds", "bs-bounds",
    "um-bounds", "war-dashboard-bounds",
}  # fmt: skip
FALSE_CLAIMS = {"war-bounds-original", "drp-upper-original"}


@pytest.fixture(scope="module")
def claims() -> list[Claim]:
    return load_catalogue()


def is_symbolic(c: Claim) -> bool:
    return any("Fin n" in t for t in c.variables.values())


def test_the_shipped_catalogue_loads(claims: list[Claim]) -> None:
    ids = [c.theorem_id for c in claims]
    assert len(ids) == len(set(ids))
    assert set(ids) >= FORMULAS_IDS
    assert {"drp-projected-bounds", "drp-projected-bounds-y3"} <= set(ids)
    assert default_catalogue_path().name == "moneyball.json"
    raw = json.loads(default_catalogue_path().read_text())
    assert isinstance(raw, list)
    for entry in raw:
        expected_fields = {"theorem_id", "natural_language", "formal_expression", "assumptions"}
        assert expected_fields | {"variables", "expected", "tags"} <= set(entry)


def test_every_claim_elaborates(claims: list[Claim]) -> None:
    for c in claims:
        st = c.statement()
        assert [p.name for p in st.variables][: len(c.variables)] == list(c.variables)
        assert len(st.hypotheses) >= len(c.assumptions)
        assert c.expected is not None and c.natural_language and c.tags


def test_expected_verdicts(claims: list[Claim]) -> None:
    by_id = {c.theorem_id: c for c in claims}
    for c in claims:
        base = c.theorem_id.removesuffix("-n3")
        if base in FALSE_CLAIMS:
            assert c.expected is Verdict.REFUTED, c.theorem_id
        elif is_symbolic(c) or c.theorem_id == "drp-projected-bounds":
            assert c.expected is Verdict.BOUNDED, c.theorem_id
        else:
            assert c.expected is Verdict.PROVED, c.theorem_id
    assert by_id["sps-weights"].formal_expression == "0.4 + 0.3 + 0.2 + 0.1 = (1 : ℝ)"
    assert by_id["fs-bounds"].assumptions[0] == "maxRisk > 0"


def test_each_symbolic_claim_has_a_fixed_size_twin(claims: list[Claim]) -> None:
    by_id = {c.theorem_id: c for c in claims}
    symbolic = [c for c in claims if is_symbolic(c)]
    assert len(symbolic) == 8
    for c in symbolic:
        twin = by_id[c.theorem_id + "-n3"]
        assert "n" not in twin.variables
        assert all(t in ("ℝ", "Fin 3 → ℝ") for t in twin.variables.values())
        assert (twin.formal_expression, twin.assumptions) == (c.formal_expression, c.assumptions)
        assert twin.expected is (
            Verdict.REFUTED if c.expected is Verdict.REFUTED else Verdict.PROVED
        )
        vec = next(
            p for p in twin.statement().variables if isinstance(p.ty.__dict__.get("dom"), FinT)
        )
        assert vec.ty.dom.size == Lit(3, vec.ty.dom.size.ty)


def test_family_defaults_to_the_id_prefix(claims: list[Claim]) -> None:
    by_id = {c.theorem_id: c for c in claims}
    assert by_id["war-bounds-original"].family == "war"
    assert by_id["fs-bounds-n3"].family == "fs"


OLD = {
    "theorems": [
        {
            "theorem_id": "war-1",
            "natural_language": "WAR is bounded",
            "formal_expression": "-100 ≤ warScore w a d",
            "variables": {"n": "ℕ", "w": "Fin n → ℝ", "a": "Fin n → ℝ", "d": "Fin n → ℝ"},
            "assumptions": ["h_w: ∀ i, 0 < w i", "h_sum : ∑ i, w i = 1"],
            "context": "Moneyball-Buffett model",
            "proof_outline": ["bound each term", "sum"],
        },
        {
            "theorem_id": "sps-1",
            "formal_expression": "∀ (D J G E : ℝ), 0 ≤ D → 0 ≤ sps D J G E ∨ True",
            "assumptions": [],
        },
    ]
}


def test_old_format_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD, ensure_ascii=False))
    war, sps = load_catalogue(path)
    assert war.assumptions == ("h_w: ∀ i, 0 < w i", "h_sum : ∑ i, w i = 1")
    assert war.extra == {
        "context": "Moneyball-Buffett model",
        "proof_outline": ["bound each term", "sum"],
    }
    assert war.expected is None and war.family == "war" and war.tags == ()
    assert len(war.statement().hypotheses) == 2
    assert sps.natural_language == "" and sps.variables == {}
    assert [p.name for p in sps.statement().variables] == ["D", "J", "G", "E"]
    assert war.to_json()["context"] == "Moneyball-Buffett model"
    path.write_text(json.dumps({"claims": OLD["theorems"]}, ensure_ascii=False))
    assert [c.theorem_id for c in load_catalogue(path)] == ["war-1", "sps-1"]


def test_variables_as_declarations(tmp_path: Path) -> None:
    path = tmp_path / "decl.json"
    entry = {"theorem_id": "x-1", "formal_expression": "x < y", "variables": ["x y : ℝ"]}
    path.write_text(json.dumps([entry], ensure_ascii=False))
    assert load_catalogue(path)[0].variables == {"x": "ℝ", "y": "ℝ"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"something": []}', "list of claims"),
        ('[{"theorem_id": "a-1"}]', "'a-1': missing or empty required field 'formal_expression'"),
        ('[{"formal_expression": "True"}]', "'#1': missing or empty required field 'theorem_id'"),
        ('[{"theorem_id": "a", "formal_expression": "True"}, {"theorem_id": "a", '
         '"formal_expression": "True"}]', "'a': duplicate theorem id"),
        ('[{"theorem_id": "a", "formal_expression": "True", "expected": "MAYBE"}]',
         "unknown expected verdict"),
        ('[{"theorem_id": "a", "formal_expression": "True", "assumptions": [1]}]',
         "list of strings"),
        ('[3]', "entry 1 is not a JSON object"),
    ],
)  # fmt: skip
def test_malformed_files_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "missing.json")


def test_directory_of_catalogues(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"theorem_id": "a", "formal_expression": "True"}]')
    (tmp_path / "b.json").write_text('[{"theorem_id": "b", "formal_expression": "True"}]')
    assert [c.theorem_id for c in load_catalogue(tmp_path)] == ["a", "b"]
    (tmp_path / "c.json").write_text('[{"theorem_id": "a", "formal_expression": "True"}]')
    with pytest.raises(CatalogueError, match="duplicate"):
        load_catalogue(tmp_path)


def test_find_claim() -> None:
    assert find_claim("sps-weights").expected is Verdict.PROVED
    with pytest.raises(UnknownTheoremError) as info:
        find_claim("war-bound-original")
    assert "war-bounds-original" in str(info.value)
