"""Hostile SMT-LIB input: the problem is data, never a script Z3 runs.

Z3's ``parse_smt2_string`` executes what it reads: ``set-option`` writes files and changes
Z3's global parameters for every later task of the process, ``include`` reads a file, text
after a NUL byte is dropped and unknown commands are skipped.  HMS's reader
(:mod:`hms_celery.verification.smtlib_reader`) refuses all of that, naming the command and its
``line:column``, before Z3 sees anything.  Pure logic: no services.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import z3

from hms_celery import client
from hms_celery.errors import InputError
from hms_celery.verification.smtlib import decide_smtlib, parse_smtlib
from hms_celery.verification.smtlib_reader import (
    LOGIC_NAME,
    PROBLEM_COMMANDS,
    SmtlibError,
    read_commands,
    read_problem,
)
from hms_celery.verification.verdict import Verdict

SHARED_SMTLIB = Path(__file__).resolve().parents[2] / ".." / "shared" / "smtlib"

SAT = "(declare-const x Int)\n(assert (> x 3))\n(check-sat)\n"
UNSAT = "(declare-const x Int)\n(assert (> x 3))\n(assert (< x 2))\n(check-sat)\n"


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root``: size, modification time, contents."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@cache
def _param_names() -> tuple[str, ...]:
    """Z3's global parameters: the top-level ones, and every module's (from ``z3 -pd``, the
    binary of the same wheel, when it is there)."""
    ctx = z3.main_ctx()
    descrs = z3.ParamDescrsRef(z3.Z3_get_global_param_descrs(ctx.ref()), ctx)
    names = {descrs.get_name(i) for i in range(descrs.size())}
    binary = shutil.which("z3", path=str(Path(sys.executable).parent))
    if binary:
        listing = subprocess.run([binary, "-pd"], capture_output=True, text=True, timeout=60)
        module = None
        for line in listing.stdout.splitlines():
            header = re.match(r"\[module\] (\w+)", line)
            if header:
                module = header[1]
            elif module and (param := re.match(r"    ([\w.]+) \(", line)):
                names.add(f"{module}.{param[1]}")
    names |= {"smt.random_seed", "sat.random_seed", "model.completion", "pp.max_depth"}
    return tuple(sorted(names))


def _global_params() -> dict[str, str]:
    values = {}
    for name in _param_names():
        try:
            values[name] = z3.get_param(name)
        except z3.Z3Exception:  # listed but not readable in this build
            continue
    return values


def _assert_refused(text: str, command: str, where: str) -> str:
    """``text`` is an ERROR naming ``command`` at ``where`` (line:column); its reason."""
    out = decide_smtlib(text)
    assert out.verdict is Verdict.ERROR, (out.verdict, out.reason)
    assert f"{command} at line {where}" in out.reason, out.reason
    assert out.counterexample is None
    return out.reason


# --- files ---------------------------------------------------------------------------------

# (problem with {p} for a path in tmp_path, refused command, its line:column)
FILE_TOUCHING = [
    ('  (set-option :regular-output-channel "{p}")\n(echo "pwned")', "set-option", "2:3"),
    ('(echo "pwned")', "echo", "2:1"),
    ('(set-option :diagnostic-output-channel "{p}")\n(assert (> y 0))', "set-option", "2:1"),
    ("(set-option :trace true)\n(set-option :trace-file-name |{p}|)", "set-option", "2:1"),
    ('(set-option :trace_file_name "{p}")', "set-option", "2:1"),
    ("(set-option :dump-models true)", "set-option", "2:1"),
    ("(set-option :dump_models true)", "set-option", "2:1"),
    ('(set-option :produce-proofs true)\n(set-option :dot_proof_file "{p}")', "set-option", "2:1"),
    ("(set-option :proof true)", "set-option", "2:1"),
    ('(set-option :smtlib2_log "{p}")', "set-option", "2:1"),
    ('(set-option :solver.smtlib2_log "{p}")', "set-option", "2:1"),
    ('(set-option :solver.proof.log "{p}")', "set-option", "2:1"),
    ('(set-option :sat.drat.file "{p}")', "set-option", "2:1"),
    ("(set-option :solver.axioms2files true)", "set-option", "2:1"),
    ('(set-option :solver.cancel_backup_file "{p}")', "set-option", "2:1"),
    ("(set-option :smt.arith.dump_lemmas true)", "set-option", "2:1"),
    ('(set-option :tptp.dump_smt2 "{p}")', "set-option", "2:1"),
    ('(include "{p}")', "include", "2:1"),
    ("(check-sat)\n(get-proof)", "get-proof", "3:1"),
    ("(assert (! (> x 0) :named a))\n(check-sat)\n(get-unsat-core)", "get-unsat-core", "4:1"),
    ('(check-sat-using (with smt :smtlib2_log "{p}"))', "check-sat-using", "2:1"),
    ('(apply (with simplify :smtlib2_log "{p}"))', "apply", "2:1"),
    ("(display x)", "display", "2:1"),
    ("(simplify (+ x 1))", "simplify", "2:1"),
    ("(get-assertions)", "get-assertions", "2:1"),
    ("(get-option :regular-output-channel)", "get-option", "2:1"),
    ("(reset)", "reset", "2:1"),
    ("(reset-assertions)", "reset-assertions", "2:1"),
    ("(check-sat-assuming (b))", "check-sat-assuming", "2:1"),
    ("(declare-datatypes ((L 0)) (((nil))))", "declare-datatypes", "2:1"),
    ("(declare-datatype L ((nil)))", "declare-datatype", "2:1"),
    ("(eval x)", "eval", "2:1"),
    ("(help)", "help", "2:1"),
    ("(|set-option| :regular-output-channel |{p}|)", "|set-option|", "2:1"),
]


@pytest.mark.parametrize(("hostile", "command", "where"), FILE_TOUCHING)
def test_file_touching_commands_are_refused_and_touch_nothing(
    hostile: str, command: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Z3's default output files (z3.log, proof.dot …) land here
    target = tmp_path / "target.smt2"
    target.write_text("(assert false)\n")  # if it were included, the problem would be unsat
    before = _snapshot(tmp_path)
    text = "(declare-const x Int)\n" + hostile.format(p=target) + "\n(assert (> x 0))\n"
    _assert_refused(text, command, where)
    assert _snapshot(tmp_path) == before
    with pytest.raises(SmtlibError):
        parse_smtlib(text)
    assert _snapshot(tmp_path) == before


def test_the_threat_is_real_when_z3_runs_the_script(tmp_path: Path) -> None:
    # What the tests above guard against: Z3's own parser writes and reads these files.
    out, inc = tmp_path / "out.txt", tmp_path / "inc.smt2"
    inc.write_text("(assert false)")
    script = f'(set-option :regular-output-channel "{out}")(echo "pwned")(include "{inc}")'
    assert [str(a) for a in z3.parse_smt2_string(script, ctx=z3.Context())] == ["False"]
    assert out.read_text().strip() == "pwned"


def test_include_cannot_change_the_verdict(tmp_path: Path) -> None:
    unsat = tmp_path / "unsat.smt2"
    unsat.write_text("(assert (< x 0))\n")
    text = f'(declare-const x Int)\n(assert (> x 0))\n(include "{unsat}")\n(check-sat)\n'
    reason = _assert_refused(text, "include", "3:1")
    assert "does not read files" in reason
    without = decide_smtlib(text.replace(f'(include "{unsat}")', ""))
    assert without.verdict is Verdict.REFUTED, without.reason


def test_named_attributes_are_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = tmp_path / "named.txt"
    text = f"(declare-const x Int)\n(assert (! (> x 2) :named |{name}|))\n(check-sat)\n"
    out = decide_smtlib(text)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert int(out.counterexample["x"]) > 2
    assert _snapshot(tmp_path) == {}


def test_unknown_attributes_are_refused_and_z3_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    text = "(declare-const x Int)\n(assert (! (> x 2) :named a :foo 1))"
    reason = _assert_refused(text, "assert", "2:1")
    assert ":foo at line 2:29" in reason
    quantified = (
        "(declare-fun f (Int) Int)\n"
        "(assert (forall ((y Int)) (! (> (f y) y) :pattern ((f y)) :qid q1 :weight 2)))\n"
        "(check-sat)"
    )
    assert len(parse_smtlib(quantified)) == 1
    assert capfd.readouterr() == ("", "")


# --- not text, not SMT-LIB -----------------------------------------------------------------


def test_a_nul_byte_is_an_error_not_a_truncation() -> None:
    # Z3 stops reading at the NUL: it would decide (> x 1) alone, REFUTED.
    text = "(declare-const x Int)\n(assert (> x 1))\n;  \x00\n(assert (< x 0))\n(check-sat)\n"
    out = decide_smtlib(text)
    assert out.verdict is Verdict.ERROR
    assert "NUL byte" in out.reason and "line 3:4" in out.reason, out.reason
    inside = decide_smtlib("(declare-const x Int)\n(assert (> x\x00 1))")
    assert inside.verdict is Verdict.ERROR
    assert "NUL byte" in inside.reason and "line 2:13" in inside.reason
    assert "in assert at line 2:1" in inside.reason


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\x07", "control character (U+0007)"),
        ("\x1b", "control character (U+001B)"),
        ("\x0c", "control character (U+000C)"),
        ("\x7f", "control character (U+007F)"),
        ("\x85", "control character (U+0085)"),
        ("\ud800", "lone surrogate U+D800"),
        ("\uffff", "not text (U+FFFF)"),
    ],
)
def test_non_text_is_an_error_saying_where(char: str, named: str) -> None:
    for text, where in [
        (f'(declare-const s String)\n (assert (= s "a{char}"))', "line 2:17"),
        (f"(declare-const x Int) ; {char}\n(assert (> x 1))", "line 1:25"),
    ]:
        out = decide_smtlib(text)
        assert out.verdict is Verdict.ERROR
        assert named in out.reason and where in out.reason, out.reason


def test_nothing_after_exit_is_read_but_it_must_be_text() -> None:
    ignored = decide_smtlib(SAT + "(exit)\n(set-option :model false) (((")
    assert ignored.verdict is Verdict.REFUTED, ignored.reason
    out = decide_smtlib(SAT + "(exit)\njunk \x00")
    assert out.verdict is Verdict.ERROR
    assert "NUL byte" in out.reason and "line 5:6" in out.reason
    assert "after exit at line 4:1" in out.reason


def test_unknown_commands_are_refused_not_skipped(capfd: pytest.CaptureFixture[str]) -> None:
    reason = _assert_refused(SAT.replace("(check-sat)", "(frobnicate 1 2)"), "frobnicate", "3:1")
    assert "allow-list" in reason
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "(declare-const x Int)\n(assert (> x 1)\n",
            "the '(' of assert at line 2:1 is never closed",
        ),
        ("(declare-const x Int))\n", "line 1:22: unbalanced parentheses"),
        ('(declare-const s String)\n(assert (= s "abc))', "line 2:14: the string literal"),
        ("(declare-const |x Int)", "line 1:16: the quoted symbol"),
        ("(declare-const |x\\y| Int)", "line 1:18: a quoted symbol cannot contain"),
        ("x\n(declare-const x Int)", "line 1:1: 'x' is outside a command"),
        ("(declare-const x Int)\n(assert (> x 1e5))", "line 2:15: an unexpected character 'e'"),
        ("(declare-const x Int)\n(assert (> x #xZ))", "line 2:14: an unexpected character '#'"),
        ("(declare-const x Int)\n(assert (> x é))", "line 2:14: a non-ASCII character"),
        ("()", "line 1:1: a command must start with its name"),
        ("(declare-const x Int)\n(assert (> x 1) (< x 0))", "assert at line 2:1: takes 1"),
    ],
)
def test_malformed_text_is_an_error_saying_where(text: str, named: str) -> None:
    out = decide_smtlib(text)
    assert out.verdict is Verdict.ERROR
    assert out.reason.startswith("SMT-LIB text does not parse") and named in out.reason, out.reason


def test_z3_messages_give_positions_in_the_users_text() -> None:
    # Comments and set-info are not given to Z3, but every token keeps its line and column.
    text = (
        "(set-info :source |a benchmark\nover two lines|) ; (echo\n"
        "\t(declare-const x Int)\n   (assert (> y 1))\n"
    )
    raw = z3.Z3Exception
    with pytest.raises(raw) as z3_error:
        z3.parse_smt2_string(text, ctx=z3.Context())
    z3_position = re.search(r"line \d+ column \d+", str(z3_error.value))
    assert z3_position is not None
    out = decide_smtlib(text)
    assert out.verdict is Verdict.ERROR
    assert z3_position[0] in out.reason and "in assert at line 4:4" in out.reason, out.reason


# --- global state --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ":model false",  # Z3 would then give no models: a later REFUTED becomes ERROR
        ":rlimit 1",  # every later check would run out: TIMEOUT
        ":timeout 1",
        ":smt.random_seed 7",
        ":model_validate true",
        ":pp.max_depth 1",
        ":warning false",
        ":global-declarations true",
        ":produce-models false",
    ],
)
def test_set_option_has_no_global_effect(option: str) -> None:
    params = _global_params()
    assert decide_smtlib(SAT).verdict is Verdict.REFUTED
    _assert_refused(f"(set-option {option})\n{SAT}", "set-option", "1:1")
    _assert_refused(f"{SAT[:-12]}   (set-option {option})\n", "set-option", "3:4")
    assert _global_params() == params
    sat, unsat = decide_smtlib(SAT), decide_smtlib(UNSAT)
    assert sat.verdict is Verdict.REFUTED, sat.reason
    assert int(sat.counterexample["x"]) > 3
    assert unsat.verdict is Verdict.PROVED, unsat.reason


def test_global_params_are_listed() -> None:
    # The invariance above compares something: the module parameters are there too.
    params = _global_params()
    assert {"model", "rlimit", "timeout", "smt.random_seed"} <= set(params)


# --- data that looks like commands ---------------------------------------------------------


def test_quoted_symbols_and_strings_are_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = '(set-option :regular-output-channel "out.txt") ; ('
    value = '(set-option :regular-output-channel "p") ; (echo "x") |'
    smt_value = value.replace('"', '""')
    text = (
        f"(declare-const |{name}| Int)\n"
        "(declare-const s String)\n"
        f'(assert (= s "{smt_value}"))  ; a comment with (set-option :x 1) and "\n'
        f"(assert (> |{name}| 2))\n"
        "(declare-const |a quoted\nsymbol; over (two lines| Bool)\n"
        "(assert |a quoted\nsymbol; over (two lines|)\n"
        "(check-sat)\n"
    )
    out = decide_smtlib(text)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert int(out.counterexample[name]) > 2
    assert out.counterexample["s"] == f'"{value}"'
    assert out.counterexample["a quoted\nsymbol; over (two lines"] is True
    assert _snapshot(tmp_path) == {}
    commands = list(read_commands(text))
    assert [c.name for c in commands] == [
        "declare-const",
        "declare-const",
        "assert",
        "assert",
        "declare-const",
        "assert",
        "check-sat",
    ]
    assert [str(c.pos) for c in commands][4:] == ["5:1", "7:1", "9:1"]
    # A command after the multi-line symbol is placed on its own line.
    _assert_refused(text + ' (echo "x")', "echo", "10:2")


def test_z3_is_given_only_declarations_definitions_assertions_and_the_logic() -> None:
    text = (
        "(set-info :smt-lib-version 2.6)\n(set-logic QF_LIA)\n(declare-const x Int)\n"
        "(define-fun d () Int 3)\n(push 1)\n(assert (> x d))\n(check-sat)\n(get-model)\n"
        "(get-value (x))\n(get-info :reason-unknown)\n(eval x)\n(pop 1)\n(exit)\n"
    )
    emitted = read_problem(text).to_smt2()
    names = [c.name for c in read_commands(emitted)]
    assert names == ["set-logic", "declare-const", "define-fun", "assert"]
    assert set(names) <= set(PROBLEM_COMMANDS) | {"set-logic"}
    assert decide_smtlib(text).verdict is Verdict.REFUTED


# --- push / pop and check-sat --------------------------------------------------------------


def test_assertions_in_a_popped_scope_are_not_part_of_the_problem() -> None:
    text = (
        "(declare-const x Int)\n(assert (> x 3))\n(push 2)\n(declare-const y Real)\n"
        "(assert (< x 0))\n(pop 1)\n(pop 1)\n(declare-const y Bool)\n(assert y)\n(check-sat)\n"
    )
    out = decide_smtlib(text)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.stats["assertions"] == 2 and out.counterexample["y"] is True


def test_the_problem_is_what_is_asserted_at_check_sat() -> None:
    text = (
        "(declare-const x Int)\n(assert (> x 3))\n(push 1)\n(assert (< x 0))\n(check-sat)\n"
        "(pop 1)\n(get-info :reason-unknown)\n(exit)\n"
    )
    out = decide_smtlib(text)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.stats["assertions"] == 2
    same = decide_smtlib(SAT + "(get-model)\n(check-sat)\n(eval x)\n")
    assert same.verdict is Verdict.REFUTED, same.reason


@pytest.mark.parametrize(
    ("text", "command", "where", "named"),
    [
        (SAT + "(assert (< x 0))\n(check-sat)\n", "assert", "4:1", "after check-sat at line 3:1"),
        (
            "(declare-const x Int)\n(push 1)\n(assert (> x 3))\n(check-sat)\n(pop 1)\n(check-sat)",
            "check-sat",
            "6:1",
            "ambiguous",
        ),
        (SAT + "(declare-const y Int)\n", "declare-const", "4:1", "after check-sat"),
        ("(declare-const x Int)\n(pop 1)\n", "pop", "2:1", "only 0 are open"),
        ("(declare-const x Int)\n(get-model)\n", "get-model", "2:1", "no check-sat before"),
        ("(declare-const x Int)\n(eval x)\n(check-sat)\n", "eval", "2:1", "no check-sat"),
        ("(push 99999999999)\n", "push", "1:1", "too many"),
        ("(set-logic FOO)\n" + SAT, "set-logic", "1:1", "not a standard SMT-LIB logic"),
        ("(set-logic QF_LIA)\n(set-logic QF_LRA)\n", "set-logic", "2:1", "already set"),
        ("(declare-const x Int)\n(set-logic QF_LIA)\n", "set-logic", "2:1", "must come before"),
        ("(set-info)\n", "set-info", "1:1", "expected (set-info"),
    ],
)
def test_scripts_that_ask_more_than_one_question_are_refused(
    text: str, command: str, where: str, named: str
) -> None:
    reason = _assert_refused(text, command, where)
    assert named in reason


# --- logic names ---------------------------------------------------------------------------


def _logic_names() -> list[str]:
    parts = (
        ["", "QF_"],
        ["", "A", "AX"],
        ["", "UF"],
        ["", "BV"],
        ["", "FP"],
        ["", "DT"],
        ["", "S"],
        ["", "IDL", "RDL", "LIA", "LRA", "NIA", "NRA", "LIRA", "NIRA"],
    )
    return ["ALL", *(n for n in map("".join, itertools.product(*parts)) if LOGIC_NAME.fullmatch(n))]


def test_every_accepted_logic_is_one_z3_knows(capfd: pytest.CaptureFixture[str]) -> None:
    names = _logic_names()
    assert {"QF_LRA", "QF_NIA", "LIA", "ALL", "QF_SLIA"} <= set(names)
    assert not {"", "QF_", "S", "FOO", "QF_LRA "} & {n for n in names}
    assert not any(LOGIC_NAME.fullmatch(n) for n in ["", "QF_", "S", "FOO", "HORN"])
    for name in names:
        parse_smtlib(f"(set-logic {name})(declare-const x Real)(assert (> x 1))")
    assert capfd.readouterr() == ("", "")


def test_the_logic_reaches_z3() -> None:
    # In a reals-only logic Z3 reads 8 as the real 8.0 (else as (to_real 8)).
    [lra] = parse_smtlib("(set-logic QF_LRA)(declare-const x Real)(assert (> x 8))")
    [other] = parse_smtlib("(declare-const x Real)(assert (> x 8))")
    assert lra.sexpr() == "(> x 8.0)" and other.sexpr() == "(> x (to_real 8))"


# --- the client ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        '(set-option :regular-output-channel "{p}")\n(echo "x")',
        "(declare-const x Int)\n(assert (> x\x00 1))",
        "(declare-const x Int)\n(frobnicate)",
        '(include "{p}")',
    ],
)
def test_the_client_refuses_hostile_problems_before_enqueueing(
    hostile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def enqueue(*args: object, **kwargs: object) -> str:
        raise AssertionError("a hostile problem was enqueued")

    monkeypatch.setattr("hms_celery.client.proofs._submit", enqueue)
    monkeypatch.chdir(tmp_path)
    hostile = hostile.format(p=tmp_path / "out.smt2")
    expected = decide_smtlib(hostile).reason
    with pytest.raises(InputError) as refused:
        client.submit_smtlib_task("hostile", hostile)
    assert str(refused.value) == expected
    with pytest.raises(InputError):
        client.submit_smtlib_task("hostile", hostile.encode())
    assert _snapshot(tmp_path) == {}


# --- the public benchmarks ------------------------------------------------------------------


def _shared_files() -> list[Path]:
    return sorted(SHARED_SMTLIB.glob("*.smt2")) if SHARED_SMTLIB.is_dir() else []


def test_the_shared_benchmarks_are_there() -> None:
    if not SHARED_SMTLIB.is_dir():
        pytest.skip(f"{SHARED_SMTLIB} is absent")
    assert len(_shared_files()) == 80


@pytest.mark.parametrize("path", _shared_files(), ids=lambda p: p.name)
def test_shared_benchmarks_are_accepted_and_read_as_z3_reads_them(path: Path) -> None:
    text = path.read_text()
    problem = read_problem(text)
    ours = parse_smtlib(text)
    # They are trusted files: Z3 may run them as scripts, to compare.
    theirs = z3.parse_smt2_string(text, ctx=z3.Context())
    assert len(ours) == problem.assertions == len(theirs)
    assert [a.sexpr() for a in ours] == [a.sexpr() for a in theirs]


def test_the_one_eval_in_the_benchmarks_comes_after_check_sat() -> None:
    if not SHARED_SMTLIB.is_dir():
        pytest.skip(f"{SHARED_SMTLIB} is absent")
    with_eval = []
    for path in _shared_files():
        names = [c.name for c in read_commands(path.read_text())]
        if "eval" in names:
            with_eval.append(path.name)
            assert names.index("eval") > names.index("check-sat")
    assert with_eval == ["z3test__regressions_smt2_epsilon.smt2"]
