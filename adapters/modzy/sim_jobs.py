"""A simulated Modzy job: its settings, its timing and how Modzy's answers render it.

Everything here is a pure function of a job, the ``SimSettings`` and the current clock
reading, so the same job answers the same at the same time. A job's *age* is seconds
since submit, frozen when it was cancelled or timed out.

Two switches show shapes the real provider sends and the seed docs did not:
``completed_with_error`` ends a job with a failed item as ``COMPLETED_WITH_ERROR`` (a
status word the docs name and the SDKs have no constant for: they take any word but
``SUBMITTED``/``IN_PROGRESS`` as finished, modzy-sdk ``jobs.py`` ``block_until_complete``),
and ``platform_fields`` lays each result item out as modzy-sdk 0.11.6 ``_util.py``
(``run_model``'s ``formatted_sample_output``) does: the platform's fields (``model``,
``userIdentifier``, ``accessKey``, ``teamIdentifier``, ``accountIdentifier``,
``inputSize``, ``timeMeters``, ``datasourceCompletedTime``, ``error``) beside the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from adapters.modzy.sim_models import SimModel, run_model

SIMULATOR_KEY = "demo.modzy-simulator-key"
#: [inferred] The ``accessKey`` a result item names (the submitting key's public part at
#: Modzy): distinctive, so that tests can prove it never reaches a caller or a log line.
SIM_ACCESS_KEY = "K7simAccessKeyQ2x9Wz4"
ACCOUNT_ID = "sim-account-0001"
TEAM_ID = "sim-team-0001"
USER_ID = "sim-user-0001"
COMPLETED_WITH_ERROR = "COMPLETED_WITH_ERROR"
TERMINAL = ("COMPLETED", COMPLETED_WITH_ERROR, "CANCELED", "TIMEDOUT")


@dataclass(frozen=True, slots=True)
class SimSettings:
    api_key: str = SIMULATOR_KEY
    #: Seconds a job stays ``SUBMITTED`` before its first item starts.
    queue_seconds: float = 0.5
    #: Seconds each item takes (``FETCHING_DATA`` for ``fetch_fraction`` of it).
    item_seconds: float = 0.7
    fetch_fraction: float = 0.3
    #: Items processed at once.
    concurrency: int = 1
    #: Input item names that fail, besides those containing ``fail``.
    fail_inputs: frozenset[str] = frozenset()
    #: [inferred] HTTP status of an accepted submit (the docs allow 200 or 202).
    submit_status: int = 200
    #: [inferred] Whether the submit answer carries ``status`` (the SDKs assume SUBMITTED).
    submit_includes_status: bool = False
    #: [doc] Both offsets occur: ``...187+0000`` and ``...187+00:00``.
    time_offset: Literal["+0000", "+00:00"] = "+0000"
    #: [doc] Results answer 404 until an item starts; False answers empty maps instead.
    early_404: bool = True
    #: [inferred] Running items are listed in ``results`` with their status.
    running_items_in_results: bool = True
    #: [doc] The legacy answer nesting each item's content under its own name again.
    legacy_nesting: bool = False
    #: [inferred] Status for cancelling a job that already ended.
    cancel_done_status: int = 400
    #: [inferred] ``per-page`` of the job history when the caller gives none.
    history_page_size: int = 10
    #: [doc] ``maximumInputsPerJob`` of ``/jobs/features``; more is refused (quota).
    max_inputs_per_job: int = 1000
    #: [inferred] Status for a quota refusal (the docs give none; 400 or 403).
    quota_status: int = 400
    #: [doc] A finished job with a failed item is ``COMPLETED_WITH_ERROR``, not
    #: ``COMPLETED`` (the word is documented; when Modzy uses it is inferred).
    completed_with_error: bool = False
    #: [library] Result items carry the platform's fields (modzy-sdk ``_util.py``).
    platform_fields: bool = False
    #: [inferred] The ``accessKey`` those items name.
    access_key: str = SIM_ACCESS_KEY


@dataclass
class SimItem:
    name: str
    #: The item's values by model input name (text for text jobs, else bytes).
    values: dict[str, str | bytes]
    fails: bool
    size: int
    #: Why the model fails the item, when it is the input (a wrong input name, say).
    error: str | None = None


@dataclass
class SimJob:
    id: str
    model: SimModel
    explain: bool
    timeout_ms: int
    items: list[SimItem]
    key_prefix: str
    submitted: float
    submitted_at: datetime
    #: Seconds after submit when the job was cancelled.
    canceled_after: float | None = None
    #: The submit's JSON body, as received (for tests comparing clients' requests).
    body: Any = None


# -- timing ------------------------------------------------------------------------------


def _item_start(s: SimSettings, index: int) -> float:
    return s.queue_seconds + (index // max(1, s.concurrency)) * s.item_seconds


def _done_after(s: SimSettings, job: SimJob) -> float:
    """Seconds after submit when the last item ends: computed as ``item_state`` computes
    each item's end (a sum of the same floats in the same order), so a job is never
    COMPLETED while rounding leaves its last item processing (0.02 + 0.01 + 0.01 is a
    hair above 0.04)."""
    ends = (_item_start(s, i) + s.item_seconds for i in range(len(job.items)))
    return max(ends, default=s.queue_seconds)


def job_state(job: SimJob, s: SimSettings, now: float) -> tuple[str, float]:
    """The job's status word and its frozen age (seconds after submit) at ``now``."""
    age = now - job.submitted
    done = _done_after(s, job)
    if job.canceled_after is not None:
        return "CANCELED", job.canceled_after
    limit = job.timeout_ms / 1000
    if job.timeout_ms > 0 and limit < done and age >= limit:
        return "TIMEDOUT", limit
    if age >= done:
        if s.completed_with_error and any(item.fails for item in job.items):
            return COMPLETED_WITH_ERROR, done
        return "COMPLETED", done
    if age < s.queue_seconds:
        return "SUBMITTED", age
    return "IN_PROGRESS", age


def item_state(s: SimSettings, job: SimJob, index: int, age: float) -> str | None:
    start = _item_start(s, index)
    if age < start:
        return None
    if age < start + s.item_seconds * s.fetch_fraction:
        return "FETCHING_DATA"
    if age < start + s.item_seconds:
        return "PROCESSING"
    return "FAILED" if job.items[index].fails else "SUCCESSFUL"


# -- rendering ---------------------------------------------------------------------------


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def timestamp(job: SimJob, s: SimSettings, after: float) -> str:
    at = job.submitted_at + timedelta(seconds=after)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}" + s.time_offset


def _counts(job: SimJob, s: SimSettings, age: float) -> dict[str, int]:
    states = [item_state(s, job, i, age) for i in range(len(job.items))]
    ok, failed = states.count("SUCCESSFUL"), states.count("FAILED")
    return {
        "total": len(job.items),
        "completed": ok,
        "failed": failed,
        "pending": len(job.items) - ok - failed,
    }


def details(job: SimJob, s: SimSettings, now: float) -> dict[str, Any]:
    word, age = job_state(job, s, now)
    return {
        "jobIdentifier": job.id,
        "submittedBy": job.key_prefix,
        "accountIdentifier": ACCOUNT_ID,
        "model": {
            "identifier": job.model.identifier,
            "version": job.model.version,
            "name": job.model.name,
        },
        "status": word,
        "createdAt": timestamp(job, s, 0),
        "updatedAt": timestamp(job, s, age),
        "submittedAt": timestamp(job, s, 0),
        **_counts(job, s, age),
        "elapsedTime": _ms(age),
        "queueTime": _ms(min(age, s.queue_seconds)),
        "timeout": job.timeout_ms,
        "user": {"accessKey": job.key_prefix, "status": "ACTIVE"},
        "jobInputs": [{"identifier": item.name} for item in job.items],
        "inputByteAmount": sum(item.size for item in job.items),
        "explain": job.explain,
        "hoursDeleteInput": 0,
        "team": {"identifier": TEAM_ID},
        "imageClassificationModel": job.model.model_type == "imageClassification",
    }


def _engine(job: SimJob, index: int) -> str:
    version = job.model.version.replace(".", "-")
    return f"model-batch-{job.model.identifier}-{version}-{index % 3:04d}"


def _item_error(job: SimJob, item: SimItem) -> str:
    return item.error or (
        f"Model failed to process input: {job.model.input_name} of input item "
        f"{item.name!r} could not be read."
    )


def _result_item(job: SimJob, s: SimSettings, index: int, word: str) -> dict[str, Any]:
    if s.platform_fields:
        return _platform_item(job, s, index, word)
    item = job.items[index]
    start = _item_start(s, index)
    entry: dict[str, Any] = {
        "status": word,
        "engine": _engine(job, index),
        "startTime": timestamp(job, s, start),
    }
    if word in ("FETCHING_DATA", "PROCESSING"):
        entry["updateTime"] = entry["startTime"]
        return entry
    end = start + s.item_seconds
    entry |= {"updateTime": timestamp(job, s, end), "endTime": timestamp(job, s, end)}
    entry["elapsedTime"] = _ms(s.item_seconds)
    if word == "FAILED":
        entry["error"] = _item_error(job, item)
        return entry
    fetch = s.item_seconds * s.fetch_fraction
    entry |= {
        "inputFetching": _ms(fetch),
        "outputUploading": None,
        "modelLatency": _ms(s.item_seconds - fetch),
        "queueTime": _ms(start),
        "results.json": run_model(job.model, item.values, explain=job.explain),
        "voting": {"up": 0, "down": 0},
    }
    return entry


def _platform_item(job: SimJob, s: SimSettings, index: int, word: str) -> dict[str, Any]:
    """An item in the layout of modzy-sdk 0.11.6 ``_util.py`` (``formatted_sample_output``).

    The library's template leaves the platform's fields null; here they carry values
    of the kind the platform fills in ([inferred]: ``model`` as the job's model
    reference, ``accessKey`` the submitting key's public part, ``timeMeters`` null).
    """
    item = job.items[index]
    start = _item_start(s, index)
    running = word in ("FETCHING_DATA", "PROCESSING")
    end = start + s.item_seconds
    fetched = start + s.item_seconds * s.fetch_fraction
    entry: dict[str, Any] = {
        "model": {"identifier": job.model.identifier, "version": job.model.version},
        "userIdentifier": USER_ID,
        "status": word,
        "engine": _engine(job, index),
        "error": _item_error(job, item) if word == "FAILED" else None,
        "startTime": timestamp(job, s, start),
        "endTime": None if running else timestamp(job, s, end),
        "updateTime": timestamp(job, s, start if running else end),
        "inputSize": item.size,
        "accessKey": s.access_key,
        "teamIdentifier": TEAM_ID,
        "accountIdentifier": ACCOUNT_ID,
        "timeMeters": None,
        "datasourceCompletedTime": None if word == "FETCHING_DATA" else timestamp(job, s, fetched),
        "elapsedTime": None if running else _ms(s.item_seconds),
    }
    if word == "SUCCESSFUL":
        entry["results.json"] = run_model(job.model, item.values, explain=job.explain)
    return entry


def results_body(job: SimJob, s: SimSettings, now: float) -> dict[str, Any]:
    word, age = job_state(job, s, now)
    finished = word in TERMINAL
    results: dict[str, Any] = {}
    failures: dict[str, Any] = {}
    for i, item in enumerate(job.items):
        state = item_state(s, job, i, age)
        if state is None:
            continue
        running = state in ("FETCHING_DATA", "PROCESSING")
        if running and (finished or not s.running_items_in_results):
            continue  # a stopped job's unfinished items never end
        entry = _result_item(job, s, i, state)
        if s.legacy_nesting:
            entry = {item.name: entry}
        (failures if state == "FAILED" else results)[item.name] = entry
    counts = _counts(job, s, age)
    return {
        "jobIdentifier": job.id,
        "accountIdentifier": ACCOUNT_ID,
        "team": {"identifier": TEAM_ID},
        "total": counts["total"],
        "completed": counts["completed"],
        "failed": counts["failed"],
        "finished": finished,
        "submittedByKey": job.key_prefix,
        "explained": job.explain,
        "submittedAt": timestamp(job, s, 0),
        "initialQueueTime": _ms(min(age, s.queue_seconds)),
        "totalQueueTime": _ms(min(age, s.queue_seconds)),
        "averageModelLatency": float(_ms(s.item_seconds)),
        "totalModelLatency": float(_ms(s.item_seconds) * (counts["completed"] + counts["failed"])),
        "elapsedTime": _ms(age),
        "startingResultSummarizing": timestamp(job, s, age) if finished else None,
        "resultSummarizing": 0,
        "results": results,
        "failures": failures,
    }
