"""How ``publish.submit`` packs proof tasks into ``hms.prove_batch`` messages (pure logic)."""

from __future__ import annotations

from hms_celery.runtime.publish import (
    BATCH_SPREAD,
    PROVE_BATCH_TASK,
    PROVE_TASK,
    Publication,
    Submission,
    batched,
)
from hms_celery.settings import get_settings


def _proof(i: int, queue: str = "prove.z3", timeout: float | None = None) -> Submission:
    return Submission(
        Publication(PROVE_TASK, f"t{i}", queue, {"statement": f"{i} = {i}"}, timeout=timeout,
                    ignore_result=True),
        kind="proof",
    )  # fmt: skip


def _members(pub: Publication) -> list[str]:
    return [m["task_id"] for m in pub.kwargs["members"]]


def test_a_large_submission_goes_out_in_batches_in_order() -> None:
    subs = [_proof(i) for i in range(40)]
    out = batched(subs, 16)
    assert [count for _, count in out] == [5] * 8  # 40 // BATCH_SPREAD = 5 per batch
    assert all(pub.name == PROVE_BATCH_TASK and pub.queue == "prove.z3" for pub, _ in out)
    assert [t for pub, _ in out for t in _members(pub)] == [f"t{i}" for i in range(40)]
    assert [m["payload"] for m in out[0][0].kwargs["members"]] == [
        s.publication.kwargs for s in subs[:5]
    ]
    assert len({pub.task_id for pub, _ in out}) == 8  # each batch its own message id
    assert sum(count for _, count in batched([_proof(i) for i in range(1000)], 16)) == 1000
    assert {count for _, count in batched([_proof(i) for i in range(1000)], 16)} == {16, 8}


def test_small_submissions_and_size_one_publish_every_proof_alone() -> None:
    for subs, size in (([_proof(i) for i in range(2 * BATCH_SPREAD - 1)], 16),
                       ([_proof(i) for i in range(100)], 1)):  # fmt: skip
        out = batched(subs, size)
        assert [pub for pub, _ in out] == [s.publication for s in subs]
        assert {count for _, count in out} == {1}


def test_a_batch_never_mixes_queues_or_other_tasks() -> None:
    step = Submission(Publication("hms.ga.step", "g", "ga", {}, limits=False), kind="ga-step")
    subs = [_proof(i) for i in range(8)] + [step] + [_proof(i, "prove.cvc5") for i in range(8, 16)]
    subs = subs * 2
    out = batched(subs, 4)
    for pub, count in out:
        if pub.name == PROVE_BATCH_TASK:
            queues = {s.publication.queue for s in subs if s.task_id in _members(pub)}
            assert len(queues) == 1 and count == len(_members(pub)) <= 4
    assert [pub for pub, _ in out].count(step.publication) == 2
    flat = [
        t
        for pub, _ in out
        for t in (_members(pub) if pub.name == PROVE_BATCH_TASK else [pub.task_id])
    ]
    assert flat == [s.task_id for s in subs]


def test_a_batch_has_the_time_of_all_its_members() -> None:
    settings = get_settings()
    subs = [_proof(i, timeout=10.0 * (i + 1)) for i in range(16)]
    (first, _), *_ = batched(subs, 2)
    soft, hard = settings.time_limits(first.timeout)
    members = [settings.time_limits(s.publication.timeout).soft for s in subs[:2]]
    assert soft == sum(members)  # no member has less time than alone
    assert hard == soft + settings.time_limit_margin
    assert first.options()["ignore_result"] is True


def test_a_batch_stays_within_the_brokers_redelivery_limits() -> None:
    from hms_celery.runtime.publish import MAX_BATCH_LIMIT_S

    settings = get_settings()
    subs = [_proof(i, timeout=300.0) for i in range(64)]  # 315 s soft limit each
    out = batched(subs, 16)
    for pub, count in out:
        assert settings.time_limits(pub.timeout).hard <= MAX_BATCH_LIMIT_S
        assert count == 4 if pub.name == PROVE_BATCH_TASK else count == 1
    assert sum(count for _, count in out) == 64
