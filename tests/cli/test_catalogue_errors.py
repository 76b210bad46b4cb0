"""A catalogue error names the file and the claim id, on every path: `hms check`,
`hms prove THEOREM_ID`, `hms theorems` (the installed console script) and
`client.load_catalogue`.  No broker is needed: nothing here is submitted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hms_celery.errors import CatalogueError
from tests.cli.test_usage import hms

ENTRIES = [
    {"theorem_id": "fine-1", "formal_expression": "x ≥ 0", "variables": {"x": "ℕ"},
     "context": "an unknown field, kept", "expected": "PROVED"},
    {"theorem_id": "bad-parse", "formal_expression": "∀ x : ℝ, (x + 1 ≤ x",
     "proof_outline": "an unknown field beside a parse error", "expected": "PROVED"},
    {"theorem_id": "bad-entry", "formal_expression": 3, "expected": "PROVED"},
    {"theorem_id": "bad-assumption", "formal_expression": "x ≥ 0",
     "assumptions": ["x > 0", "x + > 1"], "variables": {"x": "ℝ"}},
    {"formal_expression": "x > 0", "expected": "PROVED"},
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HMS_DATA_DIR": str(tmp_path), "HMS_DATABASE_URL": f"sqlite:///{tmp_path}/hms.db"}


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(ENTRIES[1:], ensure_ascii=False))  # none checkable: no broker
    return path


def test_check_names_file_and_claim_of_every_bad_entry(
    catalogue: Path, env: dict[str, str]
) -> None:
    done = hms("check", str(catalogue), env=env)
    assert done.returncode == 1, done.stdout + done.stderr  # the expected verdicts disagree
    out = done.stdout
    for claim, entry in (("bad-parse", 1), ("bad-entry", 2), ("bad-assumption", 3), ("#4", 4)):
        assert f"in {catalogue}, entry #{entry}" in out, out
        assert f"│ {claim} " in out, out
    assert "formal_expression 1:20" in out and "assumptions[1] 1:5" in out
    rows = {r["theorem_id"]: r for r in json.loads(hms("check", str(catalogue), "--json",
                                                       env=env).stdout)}  # fmt: skip
    assert rows["bad-parse"]["file"] == str(catalogue) and rows["bad-parse"]["line"] == 1
    assert rows["bad-entry"]["field"] == "formal_expression"


def test_prove_theorem_id_names_file_and_claim(catalogue: Path, env: dict[str, str]) -> None:
    done = hms("prove", "bad-parse", "--catalogue", str(catalogue), env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{catalogue}: claim 'bad-parse': formal_expression 1:20:" in done.stderr
    entry = hms("prove", "bad-entry", "--catalogue", str(catalogue), env=env)
    assert entry.returncode == 2
    assert f"{catalogue}: claim 'bad-entry': formal_expression:" in entry.stderr
    missing = hms("prove", "bad-pars", "--catalogue", str(catalogue), env=env)
    assert missing.returncode == 2
    assert f"unknown theorem id 'bad-pars' in {catalogue}" in missing.stderr
    assert "did you mean: bad-parse" in missing.stderr
    assert "Traceback" not in done.stderr + entry.stderr + missing.stderr


def test_an_unreadable_file_is_named_with_json_line_and_column(
    tmp_path: Path, env: dict[str, str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"theorem_id": "a",\n  "formal_expression": "x" oops}]')
    for argv in (["check", str(broken)], ["theorems", str(broken)],
                 ["prove", "some-claim", "--catalogue", str(broken)]):  # fmt: skip
        done = hms(*argv, env=env)
        assert done.returncode == 2, (argv, done.stderr)
        assert f"{broken}:2:28: not valid JSON" in done.stderr, done.stderr
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"[\xff\xfe]")
    done = hms("check", str(binary), env=env)
    assert done.returncode == 2 and f"{binary}: not UTF-8" in done.stderr
    gone = hms("check", str(tmp_path / "gone.json"), env=env)
    assert gone.returncode == 2 and f"{tmp_path / 'gone.json'}: catalogue not found" in gone.stderr


def test_load_catalogue_names_file_and_claim(catalogue: Path, tmp_path: Path) -> None:
    from hms_celery import client

    with pytest.raises(CatalogueError) as raised:
        client.load_catalogue(catalogue, strict=True)
    message = str(raised.value)
    for claim in ("claim 'bad-parse'", "claim 'bad-entry'", "claim 'bad-assumption'", "entry #4"):
        assert f"{catalogue}: {claim}" in message, message
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(ENTRIES, ensure_ascii=False))
    claims = client.load_catalogue(mixed)  # not strict: the checkable claims
    assert [c.theorem_id for c in claims] == ["fine-1"]
    assert claims[0].extra == {"context": "an unknown field, kept"}
    broken = tmp_path / "broken.json"
    broken.write_text("[1,")
    with pytest.raises(CatalogueError, match=f"{broken}:1:4: not valid JSON"):
        client.load_catalogue(broken)
