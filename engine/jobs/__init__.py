"""Job functions: what a schedule, a worker, an API request or a command actually runs.

Each loads its inputs, calls the pure engine and stores the outcome. The Celery tasks,
APScheduler jobs, API handlers and CLI commands are thin wrappers over these:

- ``inputs``: a run's inputs (catalog, scorecards with their last good versions, facts from
  every source, clock), assembled one way for runs, ``evaluate`` and every mode of ``gate``;
- ``evaluation``: evaluation runs (isolated evaluation, store, lease and reaping);
- ``fresh``: the result a gate decides on, graded by the scorecard as it is now;
- ``facts``: the facts file, the latest facts a run reads, pushed custom facts;
- ``queue``: the server's queue of requested runs (queued until its worker starts them);
- ``collection``: the configured collectors, their facts stored;
- ``context``: the fact vocabulary and a migrated database, for every job.
"""

from engine.jobs.collection import (
    CollectionStored,
    configured_collectors,
    run_collection,
    store_collection,
    store_collection_result,
)
from engine.jobs.context import prepare_database, schemas_for
from engine.jobs.evaluation import (
    EvaluatedRun,
    EvaluationFailed,
    RunOutcome,
    create_run,
    evaluate_run,
    prune_history,
    reap_runs,
    run_evaluation,
    store_run,
)
from engine.jobs.facts import (
    CUSTOM_SOURCE,
    delete_custom_fact,
    latest_facts,
    push_custom_facts,
    store_file_facts,
)
from engine.jobs.queue import (
    QueuedRun,
    RunQueueFull,
    abandon_queued_runs,
    queue_run,
    start_queued_run,
)

__all__ = [
    "CUSTOM_SOURCE",
    "CollectionStored",
    "EvaluatedRun",
    "EvaluationFailed",
    "QueuedRun",
    "RunOutcome",
    "RunQueueFull",
    "abandon_queued_runs",
    "configured_collectors",
    "create_run",
    "delete_custom_fact",
    "evaluate_run",
    "latest_facts",
    "prepare_database",
    "prune_history",
    "push_custom_facts",
    "queue_run",
    "reap_runs",
    "run_collection",
    "run_evaluation",
    "schemas_for",
    "start_queued_run",
    "store_collection",
    "store_collection_result",
    "store_file_facts",
    "store_run",
]
