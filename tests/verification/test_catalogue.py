"""The claims catalogue: the shipped Moneyball file, old-format files, and files with bad
entries, which load claim by claim (one row per entry, the bad ones with where and why)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hms_celery.errors import CatalogueError, StatementError, UnknownTheoremError
from hms_celery.verification.ast import FinT, Lit
from hms_celery.verification.catalogue import (
    classify,
    default_catalogue_path,
    find_claim,
    load_catalogue,
    read_catalogue,
)
from hms_celery.verification.claims import Claim, ClaimProblem
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.request import ProofRequest, order_variables
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
    assert read_catalogue().problems == []  # every entry of the shipped file is checkable
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
        else:  # the symbolic-size claims too: proved for every size (issue 9)
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


def write(tmp_path: Path, data: object, name: str = "claims.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad.json:1:2: not valid JSON: Expecting property name"),
        ('[\n  {"theorem_id": "a",\n   "formal_expression": "True"\n  ,]',
         "bad.json:4:4: not valid JSON"),
        ('{"something": []}', "an object with a 'theorems' list (the object's keys: 'something')"),
        ('{"theorems": {"a": 1}}', "an object with a 'theorems' list"),
        ('{"theorems": [], "claims": []}', "both 'theorems' and 'claims'"),
        ('"a string"', "not a JSON string"),
        ("[" * 100_000, "nested too deeply"),
    ],
)  # fmt: skip
def test_an_unreadable_file_is_an_error_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = write(tmp_path, content, "bad.json")
    with pytest.raises(CatalogueError) as info:
        read_catalogue(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"theorem_id": "caf\xe9", "formal_expression": "True"}]')
    with pytest.raises(CatalogueError, match=r"not UTF-8 text \(byte 21\)"):
        read_catalogue(path)


def test_an_empty_list_has_no_rows(tmp_path: Path) -> None:
    assert read_catalogue(write(tmp_path, [])).rows == ()
    assert read_catalogue(write(tmp_path, {"theorems": []})).rows == ()


MIXED = [
    {"theorem_id": "bad-syntax", "formal_expression": "∀ x : ℝ,\n  (x + 1 ≤ x",
     "expected": "PROVED"},
    {"theorem_id": "complex", "formal_expression": "z = z", "variables": {"z": "ℂ"}},
    {"theorem_id": "out-of-order", "formal_expression": "∑ i, w i ≥ 0",
     "assumptions": ["h: ∀ i, w i ≥ 0"], "variables": {"w": "Fin n → ℝ", "n": "ℕ"}},
    {"formal_expression": "True", "expected": "ERROR"},
    {"theorem_id": "bad-assumption", "formal_expression": "x > 0",
     "assumptions": ["x > 1", "h_foo: foo x"], "variables": {"x": "ℝ"}},
    {"theorem_id": "sets", "formal_expression": "∀ s : Set ℝ, True", "expected": "UNSUPPORTED"},
    7,
    {"theorem_id": "good", "formal_expression": "x * x ≥ 0", "variables": {"x": "ℝ"}},
]  # fmt: skip


def test_one_row_per_entry_and_the_good_ones_load(tmp_path: Path) -> None:
    path = write(tmp_path, {"theorems": MIXED})
    rows = read_catalogue(path).rows
    assert len(rows) == len(MIXED)
    syntax, cplx, ordered, no_id, assumption, sets, number, good = rows

    assert isinstance(syntax, ClaimProblem) and syntax.verdict is Verdict.ERROR
    assert (syntax.label, syntax.index, syntax.source) == ("bad-syntax", 1, str(path))
    assert (syntax.field, syntax.line, syntax.column) == ("formal_expression", 2, 13)
    assert syntax.reason.startswith("unexpected end of input; expected ')' or ':'")
    assert syntax.statement == MIXED[0]["formal_expression"]
    assert syntax.expected == "PROVED" and not syntax.agrees
    assert syntax.describe() == (
        f"{path}: claim 'bad-syntax': formal_expression 2:13: unexpected end of input; "
        "expected ')' or ':'"
    )

    assert isinstance(cplx, ClaimProblem) and cplx.verdict is Verdict.UNSUPPORTED
    assert (cplx.field, cplx.line, cplx.column) == ("variables.z", 1, 1)
    assert "unexpected identifier 'ℂ'" in cplx.reason and "not a type HMS has" in cplx.reason
    assert cplx.agrees  # no expected

    assert isinstance(ordered, Claim) and ordered.variables == {"w": "Fin n → ℝ", "n": "ℕ"}
    assert [p.name for p in ordered.statement().variables] == ["n", "w"]
    assert (ordered.source, ordered.index) == (str(path), 3)

    assert isinstance(no_id, ClaimProblem) and no_id.label == "#4" and no_id.theorem_id is None
    assert no_id.field == "theorem_id" and "missing required field 'theorem_id'" in no_id.reason
    assert no_id.verdict is Verdict.ERROR and no_id.agrees  # expected ERROR
    assert no_id.describe().startswith(f"{path}: entry #4: theorem_id: missing")

    assert isinstance(assumption, ClaimProblem) and assumption.verdict is Verdict.ERROR
    # 0-based like the JSON list; columns count in the assumption's own text, label included
    assert (assumption.field, assumption.line, assumption.column) == ("assumptions[1]", 1, 8)
    assert assumption.reason.startswith("unknown identifier 'foo'")

    assert isinstance(sets, ClaimProblem) and sets.verdict is Verdict.UNSUPPORTED
    assert (sets.field, sets.line, sets.column) == ("formal_expression", 1, 7)
    assert sets.agrees

    assert isinstance(number, ClaimProblem) and number.label == "#7"
    assert number.verdict is Verdict.ERROR and "not a JSON object but a number" in number.reason

    assert isinstance(good, Claim) and good.theorem_id == "good"
    assert [r.theorem_id for r in read_catalogue(path).claims] == ["out-of-order", "good"]
    assert [c.theorem_id for c in load_catalogue(path)] == ["out-of-order", "good"]


def test_a_problem_row_as_json_has_the_keys_of_a_checked_row(tmp_path: Path) -> None:
    row = read_catalogue(write(tmp_path, MIXED[:1])).problems[0].to_json()
    checked = {"theorem_id", "verdict", "expected", "agrees", "bound", "counterexample",
               "reason", "confirmed_by", "prover_s", "task_id"}  # fmt: skip
    assert checked <= set(row)
    assert row["verdict"] == "ERROR" and row["agrees"] is False and row["task_id"] is None
    assert row["reason"].startswith("formal_expression 2:13: unexpected end of input")
    assert (row["field"], row["line"], row["column"], row["index"]) == (
        "formal_expression",
        2,
        13,
        1,
    )


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"theorem_id": "a-1"}, "formal_expression", "missing required field 'formal_expression'"),
        ({"theorem_id": "a", "formal_expression": "  "}, "formal_expression", "is empty"),
        ({"theorem_id": 7, "formal_expression": "True"}, "theorem_id", "must be a string"),
        ({"theorem_id": "a", "formal_expression": "True", "expected": "MAYBE"}, "expected",
         "unknown expected verdict 'MAYBE'"),
        ({"theorem_id": "a", "formal_expression": "True", "assumptions": ["x > 0", 1]},
         "assumptions[1]", "must be a string, not a JSON number"),
        ({"theorem_id": "a", "formal_expression": "True", "assumptions": {"h": "x"}},
         "assumptions", "must be a list of strings"),
        ({"theorem_id": "a", "formal_expression": "True", "variables": {"x": 1}}, "variables.x",
         "the type must be a string"),
        ({"theorem_id": "a", "formal_expression": "True", "variables": ["x : ℝ", "y"]},
         "variables[1]", "is not 'name : type'"),
        ({"theorem_id": "a", "formal_expression": "True", "variables": "x : ℝ"}, "variables",
         "must be an object"),
        ({"theorem_id": "a", "formal_expression": "True", "tags": [1]}, "tags[0]", "a string"),
        ({"theorem_id": "a", "formal_expression": "True", "variables": {"x y": "ℝ"}},
         "variables", "variable name 'x y' is not a Lean identifier"),
        ({"theorem_id": "x" * 201, "formal_expression": "True"}, "",
         "theorem_id: String should have at most 200 characters"),
    ],
)  # fmt: skip
def test_a_malformed_entry_is_an_error_row(
    tmp_path: Path, entry: dict, field: str, message: str
) -> None:
    good = {"theorem_id": "ok", "formal_expression": "True"}
    rows = read_catalogue(write(tmp_path, [entry, good])).rows
    bad, ok = rows
    assert isinstance(bad, ClaimProblem) and bad.verdict is Verdict.ERROR
    assert bad.field == field and message in bad.reason, bad.describe()
    assert bad.index == 1
    assert isinstance(ok, Claim) and ok.theorem_id == "ok"


@pytest.mark.parametrize(
    ("statement", "variables", "verdict"),
    [
        ("z = z", {"z": "ℂ"}, Verdict.UNSUPPORTED),
        ("s = s", {"s": "Set ℝ"}, Verdict.UNSUPPORTED),
        ("l = l", {"l": "List ℕ"}, Verdict.UNSUPPORTED),
        ("m = m", {"m": "Matrix (Fin 2) (Fin 2) ℝ"}, Verdict.UNSUPPORTED),
        ("∀ f : ℕ → Set ℝ, True", {}, Verdict.UNSUPPORTED),
        ("p", {"p": "Prop"}, Verdict.UNSUPPORTED),
        ("∑ i in Finset.filter p s, 1 = 1", {}, Verdict.UNSUPPORTED),
        ("∀ x : ℝ, (x + 1 ≤ x", {}, Verdict.ERROR),
        ("∀ x : ℝ, frobnicate x > 0", {}, Verdict.ERROR),
        ("x = 1 + True", {"x": "ℝ"}, Verdict.ERROR),
        ("0.1 + 0.2 = 0.3", {}, Verdict.ERROR),  # a Float, as in Lean: asks for a type
        ("x ∈ S", {"x": "ℝ"}, Verdict.ERROR),
        ("w 0 = 1", {"w": "Fin m → ℝ"}, Verdict.ERROR),  # unknown name in a type
    ],
)
def test_unsupported_or_error(
    tmp_path: Path, statement: str, variables: dict, verdict: Verdict
) -> None:
    entry = {"theorem_id": "c", "formal_expression": statement, "variables": variables}
    (row,) = read_catalogue(write(tmp_path, [entry])).rows
    assert isinstance(row, ClaimProblem), statement
    assert row.verdict is verdict, row.describe()
    with pytest.raises(StatementError) as info:
        parse_statement(statement, (), variables)
    assert classify(info.value) is verdict


def test_variables_in_any_order(tmp_path: Path) -> None:
    entries = [
        {"theorem_id": "w-first", "formal_expression": "∑ i, w i = ∑ i, w i",
         "variables": {"w": "Fin n → ℝ", "n": "ℕ"}},
        {"theorem_id": "chain", "formal_expression": "True",
         "variables": {"x": "ℝ", "i": "Fin (m + 1)", "v": "Fin n → ℝ", "m": "Fin n", "n": "ℕ"}},
        {"theorem_id": "cycle", "formal_expression": "True",
         "variables": {"x": "ℝ", "a": "Fin b", "b": "Fin a"}},
        {"theorem_id": "self", "formal_expression": "True", "variables": {"n": "Fin n"}},
        {"theorem_id": "unknown", "formal_expression": "True", "variables": {"w": "Fin m → ℝ"}},
    ]  # fmt: skip
    w_first, chain, cycle, self_ref, unknown = read_catalogue(write(tmp_path, entries)).rows
    assert isinstance(w_first, Claim) and isinstance(chain, Claim)
    assert [p.name for p in w_first.statement().variables] == ["n", "w"]
    # stable: the given order wherever no dependency forces another (m needs n, i needs m)
    assert [p.name for p in chain.statement().variables] == ["x", "n", "v", "m", "i"]
    assert isinstance(cycle, ClaimProblem) and cycle.verdict is Verdict.ERROR
    assert cycle.field == "variables.a"
    assert cycle.reason == (
        "variables a → b → a depend on each other in a cycle (a : Fin b, b : Fin a)"
    )
    assert isinstance(self_ref, ClaimProblem)
    assert self_ref.reason == "variable n : Fin n mentions itself"
    assert isinstance(unknown, ClaimProblem) and unknown.verdict is Verdict.ERROR
    assert (unknown.field, unknown.line, unknown.column) == ("variables.w", 1, 5)
    assert unknown.reason == "unknown identifier 'm'"


def test_order_variables() -> None:
    assert list(order_variables({"w": "Fin n → ℝ", "a": "Fin n → ℝ", "n": "ℕ"})) == [
        "n", "w", "a"
    ]  # fmt: skip
    assert list(order_variables({"y": "ℝ", "x": "ℝ"})) == ["y", "x"]
    assert list(order_variables({"v": "Fin «n» → ℝ", "n": "ℕ"})) == ["n", "v"]
    assert order_variables(None) == {} and order_variables({}) == {}
    # a type that does not parse is left where it is, for the elaborator to report
    assert list(order_variables({"q": "Fin (", "n": "ℕ"})) == ["q", "n"]
    with pytest.raises(StatementError, match="variables a → b → c → a depend on each other"):
        order_variables({"x": "ℝ", "a": "Fin b", "c": "Fin a", "b": "Fin c"})
    # d only depends on the cycle: the message names the cycle, not d
    with pytest.raises(StatementError) as info:
        order_variables({"d": "Fin a", "a": "Fin (b + 1)", "b": "Fin a"})
    assert info.value.message == (
        "type of variable a: variables a → b → a depend on each other in a cycle "
        "(a : Fin (b + 1), b : Fin a)"
    )


def test_requests_take_variables_in_any_order() -> None:
    """The path of the client, `hms prove --var` and the worker."""
    request = ProofRequest.build(
        statement="∑ i, w i ≥ 0", assumptions=("∀ i, w i ≥ 0",),
        variables={"w": "Fin n → ℝ", "n": "ℕ"},
    )  # fmt: skip
    assert [p.name for p in request.parse().variables] == ["n", "w"]
    cyclic = ProofRequest.build(statement="True", variables={"a": "Fin b", "b": "Fin a"})
    with pytest.raises(StatementError, match="type of variable a: variables a → b → a"):
        cyclic.parse()
    assert cyclic.run(timeout=5, max_size=3, rlimit=None).verdict is Verdict.ERROR


def test_field_aliases_of_earlier_repositories(tmp_path: Path) -> None:
    entries = [
        {"id": "alias-1", "statement": "x ≥ 0", "hypotheses": ["h: x > 1"],
         "variables": {"x": "ℝ"}, "proof_outline": "trivial"},
        {"name": "alias-2", "lean": "True"},
        {"theorem_id": "canon", "name": "A title", "formal_expression": "True",
         "statement": "the natural-language statement"},
        {"id": "amb", "name": "A title", "lean": "True"},
        {"theorem_id": "amb-2", "statement": "True", "lean": "False"},
        {"id": "same", "name": "same", "statement": "True", "lean": "True"},
    ]  # fmt: skip
    first, second, canon, amb, amb2, same = read_catalogue(write(tmp_path, entries)).rows
    assert isinstance(first, Claim) and first.theorem_id == "alias-1"
    assert first.formal_expression == "x ≥ 0" and first.assumptions == ("h: x > 1",)
    assert first.extra == {"proof_outline": "trivial"}  # the aliases read are not extra
    assert len(first.statement().hypotheses) == 1
    assert isinstance(second, Claim) and (second.theorem_id, second.formal_expression) == (
        "alias-2", "True"
    )  # fmt: skip
    # the canonical field wins; the aliases beside it are kept as unknown fields
    assert isinstance(canon, Claim) and canon.formal_expression == "True"
    assert canon.extra == {"name": "A title", "statement": "the natural-language statement"}
    assert isinstance(amb, ClaimProblem) and amb.label == "#4" and amb.field == "theorem_id"
    assert "'id' and 'name' are both given and differ" in amb.reason
    assert isinstance(amb2, ClaimProblem) and amb2.label == "amb-2"
    assert amb2.field == "formal_expression" and "'statement' and 'lean'" in amb2.reason
    assert isinstance(same, Claim) and same.theorem_id == "same"


def test_duplicate_ids_are_a_row_each(tmp_path: Path) -> None:
    entries = [
        {"theorem_id": "a", "formal_expression": "True", "expected": "PROVED"},
        {"theorem_id": "b", "formal_expression": "True"},
        {"theorem_id": "a", "formal_expression": "False"},
        {"theorem_id": "a", "formal_expression": "(((", "expected": "ERROR"},
    ]
    path = write(tmp_path, entries)
    first, b, second, third = read_catalogue(path).rows
    assert isinstance(b, Claim)
    for row, others in ((first, "#3, #4"), (second, "#1, #4"), (third, "#1, #3")):
        assert isinstance(row, ClaimProblem) and row.duplicate and row.label == "a"
        assert row.verdict is Verdict.ERROR
        expected = ", ".join(f"{o} in {path}" for o in others.split(", "))
        assert row.reason.startswith(f"duplicate theorem id (also {expected})"), row.reason
    assert first.field == "theorem_id" and first.expected == "PROVED" and not first.agrees
    assert "formal_expression 1:4: unexpected end of input" in third.reason  # its own problem too
    with pytest.raises(CatalogueError, match="duplicate theorem id"):
        find_claim("a", path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "missing.json")


def test_directory_of_catalogues(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"theorem_id": "a", "formal_expression": "True"}]')
    (tmp_path / "b.json").write_text(
        '{"theorems": [{"theorem_id": "b", "formal_expression": "True"}]}'
    )
    assert [c.theorem_id for c in load_catalogue(tmp_path)] == ["a", "b"]
    (tmp_path / "c.json").write_text('[{"theorem_id": "a", "formal_expression": "True"}]')
    rows = read_catalogue(tmp_path).rows
    assert [(r.theorem_id, isinstance(r, ClaimProblem)) for r in rows] == [
        ("a", True), ("b", False), ("a", True)
    ]  # fmt: skip
    assert str(tmp_path / "c.json") in rows[0].reason and rows[2].source == str(tmp_path / "c.json")
    assert [c.theorem_id for c in load_catalogue(tmp_path)] == ["b"]
    with pytest.raises(CatalogueError, match="duplicate"):
        load_catalogue(tmp_path, strict=True)


def test_strict_loading_and_find_claim_name_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, MIXED)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path, strict=True)
    lines = str(info.value).splitlines()
    assert len(lines) == 6 and lines[0].startswith(
        f"{path}: claim 'bad-syntax': formal_expression 2:13"
    )
    with pytest.raises(CatalogueError, match=r"claim 'complex': variables\.z 1:1"):
        find_claim("complex", path)
    assert find_claim("good", path).theorem_id == "good"
    with pytest.raises(UnknownTheoremError, match="did you mean: good"):
        find_claim("goad", path)


def test_find_claim() -> None:
    assert find_claim("sps-weights").expected is Verdict.PROVED
    with pytest.raises(UnknownTheoremError) as info:
        find_claim("war-bound-original")
    assert "war-bounds-original" in str(info.value)
