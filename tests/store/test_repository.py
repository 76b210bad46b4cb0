"""The store on SQLite and on PostgreSQL: migrations, attempts, idempotent result commits."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect

from hms_celery.errors import InfrastructureError
from hms_celery.store import repository
from hms_celery.store.db import check_database, get_engine
from hms_celery.store.migrate import current_revision, head_revision, upgrade
from hms_celery.verification.verdict import ProofOutcome, Verdict


def _submit(payload: dict | None = None) -> str:
    task_id = str(uuid.uuid4())
    repository.record_submission(
        task_id,
        queue="prove.z3",
        payload=payload or {"statement": "1 = 1"},
        theorem_id="t-1",
        family="t",
        actor="test",
    )
    return task_id


def test_migrations_reach_head_and_create_tables(store_url: str) -> None:
    assert current_revision(store_url) == head_revision() is not None
    tables = set(inspect(get_engine(store_url)).get_table_names())
    assert {"tasks", "attempts", "proof_results", "audit_log", "alembic_version"} <= tables
    assert upgrade(store_url) == head_revision()  # idempotent


def test_agents_pages_leave_room_for_heartbeat_copies(store_url: str) -> None:
    """Migration 0008: on PostgreSQL the heartbeat-copy updates can stay heap-only."""
    engine = get_engine(store_url)
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL storage parameter")
    with engine.connect() as conn:
        options = conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'agents'"
        ).scalar_one()
    assert "fillfactor=50" in (options or [])


def test_migrations_build_exactly_the_models_schema(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hms_celery.store.models import Base

    with get_engine(store_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_first_completion_wins_and_duplicates_change_nothing(store_url: str) -> None:
    task_id = _submit()
    first = repository.begin_attempt(
        task_id, agent="a@h", pid=1, payload={}, queue="prove.z3"
    ).number
    second = repository.begin_attempt(
        task_id, agent="b@h", pid=2, payload={}, queue="prove.z3"
    ).number
    assert (first, second) == (1, 2)
    assert repository.task_status(task_id)["state"] == "RUNNING"

    proved = ProofOutcome(Verdict.PROVED, reason="unsat", elapsed_s=0.5)
    late = ProofOutcome(Verdict.REFUTED, counterexample={"x": "1"}, elapsed_s=0.1)
    assert repository.commit_result(
        task_id, attempt_number=second, agent="b@h", theorem_id="t-1", outcome=proved
    )
    assert not repository.commit_result(
        task_id, attempt_number=first, agent="a@h", theorem_id="t-1", outcome=late
    )
    status = repository.task_status(task_id)
    assert status["state"] == "DONE"
    assert status["verdict"] == "PROVED"
    assert status["agent"] == "b@h"
    assert status["counterexample"] is None
    assert [a["outcome"] for a in status["attempts"]] == ["DUPLICATE", "PROVED"]
    assert repository.count_results(task_id) == 1
    actions = [e["action"] for e in repository.audit_events(task_id)]
    assert actions == ["result.duplicate"]  # routine events live in tasks/attempts


def test_failed_attempt_marks_task_failed_but_not_a_done_one(store_url: str) -> None:
    task_id = _submit()
    number = repository.begin_attempt(task_id, agent="a@h", pid=1, payload={}, queue="q").number
    repository.fail_attempt(task_id, attempt_number=number, agent="a@h", error="boom")
    status = repository.task_status(task_id)
    assert status["state"] == "FAILED"
    assert status["error"] == "boom"

    done = _submit()
    n = repository.begin_attempt(done, agent="a@h", pid=1, payload={}, queue="q").number
    repository.commit_result(
        done, attempt_number=n, agent="a@h", theorem_id=None, outcome=ProofOutcome(Verdict.PROVED)
    )
    repository.fail_attempt(done, attempt_number=n, agent="a@h", error="late crash")
    assert repository.task_status(done)["state"] == "DONE"
    again = repository.begin_attempt(done, agent="b@h", pid=2, payload={}, queue="q")
    assert again[:2] == (2, True)  # a redelivered copy learns the task is final
    assert again.family == "t"  # the proof task picks its family strategy by it


def test_task_published_without_client_gets_a_row(store_url: str) -> None:
    task_id = str(uuid.uuid4())
    start = repository.begin_attempt(
        task_id, agent="a@h", pid=1, payload={"statement": "x"}, queue="prove.z3"
    )
    assert start[:2] == (1, False)
    assert repository.task_status(task_id)["payload"] == {"statement": "x"}


def test_unknown_task_is_none(store_url: str) -> None:
    assert repository.task_status("no-such-task") is None


def test_unreachable_database_names_the_url() -> None:
    url = "postgresql+psycopg2://nobody@127.0.0.1:1/nothing"
    with pytest.raises(InfrastructureError) as info:
        check_database(url)
    assert "127.0.0.1:1" in info.value.url


def test_in_flight_counts_only_open_attempts_of_unfinished_tasks(store_url: str) -> None:
    from hms_celery.agents import registry

    agent = f"counts-{uuid.uuid4().hex[:8]}@h"
    running = _submit()
    repository.begin_attempt(running, agent=agent, pid=1, payload={}, queue="q")
    done = _submit()
    n = repository.begin_attempt(done, agent=agent, pid=1, payload={}, queue="q").number
    repository.commit_result(
        done, attempt_number=n, agent=agent, theorem_id=None, outcome=ProofOutcome(Verdict.PROVED)
    )
    retried = _submit()
    n = repository.begin_attempt(retried, agent=agent, pid=1, payload={}, queue="q").number
    repository.release_attempt(retried, attempt_number=n, why="later")

    assert registry.in_flight_counts().get(agent) == 1
    assert [item["task_id"] for item in registry.in_flight(agent)] == [running]
    assert f"idle-{agent}" not in registry.in_flight_counts()


def test_a_winning_commit_abandons_the_open_attempts_and_audits_a_disagreement(
    store_url: str,
) -> None:
    task_id = _submit()
    numbers = [
        repository.begin_attempt(
            task_id, agent=f"{n}@h", pid=n, payload={}, queue="prove.z3"
        ).number
        for n in range(3)
    ]
    assert numbers == [1, 2, 3]
    assert repository.abandon_attempt(task_id, 1, "agent lost")  # closed before: stays LOST
    assert not repository.abandon_attempt(task_id, 1, "agent lost")  # once: a second sweep
    reason = "solvers disagree: z3 says unsat, cvc5 says sat"
    outcome = ProofOutcome(
        Verdict.ERROR, reason=reason, elapsed_s=0.2, stats={"disagreement": {"cvc5": "sat"}}
    )
    assert repository.commit_result(
        task_id, attempt_number=3, agent="2@h", theorem_id="t-1", outcome=outcome
    )
    status = repository.task_status(task_id)
    assert status["state"] == "DONE" and status["verdict"] == "ERROR"
    assert [a["outcome"] for a in status["attempts"]] == ["LOST", "ABANDONED", "ERROR"]
    assert all(a["ended_at"] for a in status["attempts"])
    events = repository.audit_events(task_id)
    assert [e["action"] for e in events] == ["proof.solvers_disagree"]
    assert events[0]["details"]["disagreement"] == {"cvc5": "sat"}
    assert events[0]["details"]["reason"] == reason


def test_an_attempt_opened_while_another_commits_gets_the_next_number(pg_url: str) -> None:
    """The one-statement attempt opening sees one snapshot: an attempt of the same task
    committed while it waited on the task's row lock must still not share its number."""
    import threading

    from sqlalchemy import text

    from hms_celery.settings import reset_settings

    upgrade(pg_url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HMS_DATABASE_URL", pg_url)
        reset_settings()
        task_id = _submit()
        holder = get_engine(pg_url).connect()
        tx = holder.begin()
        # What a concurrent begin_attempt does: lock the task row, insert attempt 1.
        holder.execute(text("UPDATE tasks SET status='RUNNING' WHERE id=:id"), {"id": task_id})
        holder.execute(
            text(
                "INSERT INTO attempts (task_id, number, agent, pid, started_at) "
                "VALUES (:id, 1, 'other@h', 1, now())"
            ),
            {"id": task_id},
        )
        got: list[int] = []
        opener = threading.Thread(
            target=lambda: got.append(
                repository.begin_attempt(
                    task_id, agent="me@h", pid=2, payload={}, queue="prove.z3"
                ).number
            )
        )
        opener.start()
        opener.join(1.0)  # it waits on the row lock (a bounded wait, not a timing assert)
        blocked = opener.is_alive()
        tx.commit()
        holder.close()
        opener.join(30)
        reset_settings()
    assert blocked, "begin_attempt did not wait for the task's row lock"
    assert got == [2]
    numbers = [a["number"] for a in repository_status(pg_url, task_id)["attempts"]]
    assert numbers == [1, 2]


def repository_status(url: str, task_id: str) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HMS_DATABASE_URL", url)
        from hms_celery.settings import reset_settings

        reset_settings()
        status = repository.task_status(task_id)
        reset_settings()
    assert status is not None
    return status


def test_a_store_outage_before_the_body_asks_for_a_retry_with_backoff() -> None:
    """RecordedTask.before_start turns an unreachable store into Celery's Retry (never a
    failure, which would ack and drop the task), with the autoretry's backoff."""
    from celery.exceptions import Retry

    import hms_celery.agents.prover  # noqa: F401  (registers hms.prove)
    from hms_celery.app import app
    from hms_celery.errors import InfrastructureError
    from hms_celery.runtime.recorded import RecordedTask

    task = app.tasks["hms.prove"]
    assert isinstance(task, RecordedTask)
    retried: list[dict] = []

    class Copy:  # the retry's copy of the task: recorded, not sent
        def apply_async(self, *args: object, **kwargs: object) -> None:
            pass

    def copy_of(request: object, args: object, kwargs: object, **options: object) -> Copy:
        retried.append(options)
        return Copy()

    def store_down(*args: object, **kwargs: object) -> None:
        raise InfrastructureError("store down")

    task.push_request(id="t-outage", retries=3, called_directly=False, delivery_info={})
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(repository, "begin_attempt", store_down)
            mp.setattr(task, "signature_from_request", copy_of)
            with pytest.raises(Retry):
                task.before_start("t-outage", (), {"statement": "1 = 1"})
    finally:
        task.pop_request()
    assert len(retried) == 1
    assert retried[0]["retries"] == 4
    assert 0 <= retried[0]["countdown"] <= 8  # full jitter over 2**3 s, capped at 30


def test_known_tasks_and_wait_for_results_refuse_unknown_ids(store_url: str) -> None:
    from hms_celery import client
    from hms_celery.client.proofs import UnknownTaskError

    task_id, stranger = _submit(), str(uuid.uuid4())
    assert repository.known_tasks([task_id, stranger]) == {task_id}
    assert repository.known_tasks([]) == set()
    with pytest.raises(UnknownTaskError, match=stranger):
        client.wait_for_results([task_id, stranger], timeout=1)
