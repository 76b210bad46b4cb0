"""cvc5 through the real stack: a worker consuming ``prove.cvc5`` decides ``backend="cvc5"``
tasks; every committed PROVED carries its confirmation; a disagreement is audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from fractions import Fraction

import pytest

from hms_celery import client
from hms_celery.store import repository
from hms_celery.verification.cvc5_backend import Cvc5Backend
from tests.support import WorkerProcess

pytestmark = pytest.mark.services

MONOTONE_SQUARE = "∀ (x y : ℝ), 0 ≤ x → x ≤ y → x * x ≤ y * y"


@pytest.fixture(scope="module")
def cvc5_worker(stack_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A worker consuming only ``prove.cvc5`` (the session ``worker`` takes ``prove.z3``)."""
    proc = WorkerProcess(stack_env, queues="prove.cvc5", concurrency=1)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_a_cvc5_task_is_decided_on_queue_prove_cvc5(worker, cvc5_worker) -> None:
    task_id = client.submit_proof_task("cvc5-square", MONOTONE_SQUARE, backend="cvc5")
    status = client.wait_for_result(task_id, timeout=120)
    assert status["verdict"] == "PROVED", status["reason"]
    assert status["agent"] == cvc5_worker.name  # not the prove.z3 worker
    assert status["queue"] == "prove.cvc5"
    assert status["backend"] == "cvc5"
    assert status["confirmed_by"]["solver"] == "z3"
    assert status["confirmed_by"]["status"] == "confirmed"
    refuted = client.wait_for_result(
        client.submit_proof_task(
            "cvc5-cube", "x * x * x > x", ["x > 0"], variables={"x": "ℝ"}, backend="cvc5"
        ),
        timeout=120,
    )
    assert refuted["verdict"] == "REFUTED" and refuted["agent"] == cvc5_worker.name
    x = Fraction(refuted["counterexample"]["x"])
    assert x > 0 and not x**3 > x
    # …while a Z3 task still goes to prove.z3, confirmed by cvc5 there.
    z3_status = client.wait_for_result(client.submit_proof_task("z3-square", MONOTONE_SQUARE))
    assert z3_status["agent"] == worker.name and z3_status["backend"] == "z3"
    assert z3_status["confirmed_by"]["solver"] == "cvc5"
    assert z3_status["confirmed_by"]["status"] == "confirmed"


@pytest.fixture
def in_process(stack_env, monkeypatch) -> Iterator[None]:
    """The prover runs in this process (no sandbox child), so monkeypatches reach it."""
    from hms_celery.settings import reset_settings

    monkeypatch.setenv("HMS_PROVER_SANDBOX", "false")
    reset_settings()
    yield
    monkeypatch.delenv("HMS_PROVER_SANDBOX")
    monkeypatch.delenv("HMS_CONFIRM_PROVED", raising=False)
    reset_settings()


def _run_in_process(family: str | None) -> str:
    """Run the worker's ``hms.prove`` task body here (eagerly) on a recorded task."""
    from hms_celery.agents.prover import prove_task
    from hms_celery.verification.request import ProofRequest

    task_id = str(uuid.uuid4())
    payload = ProofRequest.build(theorem_id="seam", statement=MONOTONE_SQUARE).model_dump(
        mode="json", exclude={"smtlib"}
    )
    repository.record_submission(
        task_id, queue="prove.z3", payload=payload, theorem_id="seam", family=family, actor="test"
    )
    prove_task.apply(kwargs=payload, task_id=task_id, throw=True)
    return task_id


def test_a_disagreement_is_committed_as_an_error_and_audited(in_process, monkeypatch) -> None:
    real = Cvc5Backend.check  # the seam: cvc5 gets the two hypotheses only
    monkeypatch.setattr(Cvc5Backend, "check", lambda self, a, **kw: real(self, a[:2], **kw))
    task_id = _run_in_process("seam")
    status = client.query_task_status(task_id)
    assert status["verdict"] == "ERROR"
    assert status["reason"].startswith("solvers disagree: z3")
    assert status["confirmed_by"]["status"] == "disagrees (sat)"
    events = repository.audit_events(subject=task_id)
    assert [e["action"] for e in events] == ["proof.solvers_disagree"]
    details = events[0]["details"]
    assert details["reason"] == status["reason"]
    assert details["disagreement"]["sat"]["solver"] == "cvc5"
    # an agreeing proof writes no such event
    monkeypatch.setattr(Cvc5Backend, "check", real)
    fine = _run_in_process("seam")
    assert client.query_task_status(fine)["confirmed_by"]["status"] == "confirmed"
    assert repository.audit_events(subject=fine) == []


def test_ga_fitness_tasks_skip_confirmation_and_others_keep_it(in_process, monkeypatch) -> None:
    calls: list[int] = []
    real = Cvc5Backend.check

    def spy(self, assertions, **kw):
        calls.append(len(assertions))
        return real(self, assertions, **kw)

    monkeypatch.setattr(Cvc5Backend, "check", spy)
    ga = client.query_task_status(_run_in_process("ga:0123-run"))
    assert ga["verdict"] == "PROVED" and ga["confirmed_by"] is None and calls == []
    user = client.query_task_status(_run_in_process("adhoc"))
    assert user["verdict"] == "PROVED" and user["confirmed_by"]["status"] == "confirmed"
    assert len(calls) == 1


@pytest.mark.parametrize("sandbox", ["true", "false"])
def test_hms_confirm_proved_false_turns_it_off(in_process, monkeypatch, sandbox) -> None:
    from hms_celery.settings import reset_settings

    monkeypatch.setenv("HMS_PROVER_SANDBOX", sandbox)  # the prover child reads it too
    monkeypatch.setenv("HMS_CONFIRM_PROVED", "false")
    reset_settings()
    off = client.query_task_status(_run_in_process("adhoc"))
    assert off["verdict"] == "PROVED" and off["confirmed_by"] is None
    monkeypatch.setenv("HMS_CONFIRM_PROVED", "true")
    reset_settings()
    on = client.query_task_status(_run_in_process("adhoc"))
    assert on["confirmed_by"]["status"] == "confirmed"
