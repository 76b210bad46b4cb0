"""Racing solvers across agents ("swarm" proving): ``backend="race"``.

A raced proof task is **one task** (one row in ``tasks``, one result) whose claim is fanned
out as a Celery ``group`` of **legs**, each a Celery task ``hms.race.leg`` on the queue of its
backend: Z3 with the default strategy, Z3 with ``nlsat`` (complete for nonlinear real
arithmetic, where the default linearises), cvc5, and the family's promoted strategy when one
exists (:mod:`.plan`).  Every leg that runs is an attempt of the task, with its leg in
``attempts.leg``.

* The first **decisive** leg — PROVED (confirmed by the other solver as every PROVED is),
  REFUTED (its counterexample re-checked exactly), or ERROR ``solvers disagree`` — commits
  the result once, then revokes the other legs with Celery remote control
  (``terminate=True``, SIGTERM); they are recorded CANCELLED (:mod:`.tasks`).  A terminated
  leg's pool process kills its prover child first, so the cancelled problem stops computing.
* When no leg is decisive, the last leg to finish commits the most informative result
  (BOUNDED > UNKNOWN > TIMEOUT > UNSUPPORTED > ERROR).
* A leg that finishes after the race was decided is recorded with its own verdict.  If it
  contradicts the committed verdict (PROVED against REFUTED or a solvers' disagreement, or
  REFUTED against PROVED), the result is **retracted** to ERROR ``solvers disagree: …``
  naming both legs, and the audit event ``proof.solvers_disagree`` is written: a wrong
  PROVED or REFUTED must not stand (:mod:`.decide`).

The decisions are pure functions (:mod:`.decide`); the store transactions that apply them
under a lock on the task row are in :mod:`.store`; :mod:`.view` renders a race for
``query_task_status``.
"""
