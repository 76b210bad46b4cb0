"""How `hms check` and `hms prove` show the other solver's confirmation (pure formatting)."""

from __future__ import annotations

from hms_celery.cli.render import confirmation_line as _confirmation_line
from hms_celery.cli.render import confirmation_mark as _confirmation_mark


def _status(verdict: str, status: str | None) -> dict:
    confirmed = None if status is None else {"solver": "cvc5", "version": "1.4.2",
                                             "status": status, "seconds": 0.0123}  # fmt: skip
    return {"verdict": verdict, "confirmed_by": confirmed}


def test_check_marks_every_proved_claim() -> None:
    assert _confirmation_mark(_status("PROVED", "confirmed")) == " ✓cvc5"
    assert (
        _confirmation_mark(_status("PROVED", "unconfirmed (timeout)"))
        == " (cvc5: unconfirmed (timeout))"
    )
    assert _confirmation_mark(_status("PROVED", None)) == ""  # confirmation off
    assert _confirmation_mark(_status("BOUNDED", None)) == ""
    assert _confirmation_mark(_status("ERROR", "disagrees (sat)")) == ""  # the reason says it


def test_prove_prints_one_confirmation_line() -> None:
    ok = _status("PROVED", "confirmed")["confirmed_by"]
    assert _confirmation_line(ok) == "confirmed by cvc5 1.4.2 in 0.012s"
    late = {**ok, "status": "unconfirmed (timeout)"}
    assert _confirmation_line(late) == "unconfirmed (timeout) by cvc5 1.4.2 in 0.012s"
