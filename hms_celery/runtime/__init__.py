"""What every HMS task shares at run time: how a task is recorded and published
(:mod:`~hms_celery.runtime.publish`) and how it keeps its attempt bookkeeping
(:mod:`~hms_celery.runtime.recorded`)."""
