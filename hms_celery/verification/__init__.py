"""Verification: statements in a fragment of Lean 4, the Moneyball definitions, the claims
catalogue and verdicts.  Import the public API from here; add one line per new entry point."""

from hms_celery.verification.ast import Definition, Statement
from hms_celery.verification.catalogue import (
    default_catalogue_path,
    find_claim,
    load_catalogue,
    read_catalogue,
)
from hms_celery.verification.claims import Claim, ClaimProblem
from hms_celery.verification.definitions import default_workspace, load_definitions
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.verdict import ProofOutcome, Verdict

__all__ = [
    "Claim",
    "ClaimProblem",
    "Definition",
    "ProofOutcome",
    "Statement",
    "Verdict",
    "default_catalogue_path",
    "default_workspace",
    "find_claim",
    "load_catalogue",
    "load_definitions",
    "parse_statement",
    "read_catalogue",
]
