"""The LlamaCloud simulator's data: settings, stored files and classify jobs, their wire views.

Shapes follow the official library, llama-cloud 2.19.0 (``types/classify_get_response.py``,
``types/file_create_response.py``); what the library cannot tell (id formats, how long
a job takes, the answer to cancelling a finished job) is marked [inferred].

Classification is deterministic: each rule's ``type`` and the words of its
``description`` are looked for in the file's text; the rule with the most words found
wins, with a confidence derived from the share found and a hash of the content. A
file whose name or text contains ``fail`` (any case), or whose name is listed in
``SimSettings.fail_names``, ends ``FAILED``; one whose name contains ``slow`` runs
``slow_seconds`` longer, so a job's inputs can end at different times.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SIMULATOR_KEY = "llx-simulator-key"
DEFAULT_PROJECT_ID = "0b7e3c52-6a1f-4d2e-9c8b-1f2a3b4c5d6e"
SIM_USER_ID = "sim-user"

#: Files every simulator starts with, so ``ref`` inputs have something to point at.
SEED_FILES: tuple[tuple[str, str, bytes], ...] = (
    (
        "dfl-sample-invoice",
        "sample-invoice.txt",
        b"INVOICE #2041\nBill to: Acme Corp\nLine items: 3 x widgets\nTotal amount due: $120.00",
    ),
    (
        "dfl-sample-contract",
        "sample-contract.txt",
        b"SERVICE AGREEMENT between the parties. Terms and conditions, signatures, governing law.",
    ),
)
#: Parse jobs every simulator starts with: a document LlamaCloud has already parsed.
SEED_PARSE_JOBS: tuple[tuple[str, bytes], ...] = (
    ("pjb-sample-receipt", b"Store receipt. Items paid: 2 coffees. Change given: $0.40."),
)
#: What ``purpose`` an upload may name (the library's docstring lists them).
PURPOSES = frozenset({"user_data", "parse", "extract", "classify", "split", "sheet", "agent_app"})


@dataclass(frozen=True, slots=True)
class SimSettings:
    api_key: str = SIMULATOR_KEY
    #: How long a job stays PENDING, then RUNNING, before it ends [inferred].
    pending_seconds: float = 1.0
    running_seconds: float = 2.0
    #: Extra running time of a file whose name contains ``slow_marker``.
    slow_marker: str = "slow"
    slow_seconds: float = 30.0
    #: Page size of the job list when the client sends none, and its cap [inferred].
    list_page_size: int = 20
    max_page_size: int = 100
    fail_marker: str = "fail"
    fail_names: frozenset[str] = frozenset()
    #: Uploads after this many successful ones answer 500 (None: never).
    fail_upload_after: int | None = None
    #: Uploads allowed per project per window (None: unlimited); the docs give 50 per
    #: 5 s for v1's upload route, assumed here for the beta one [inferred].
    upload_rate_limit: int | None = 50
    upload_rate_window: float = 5.0
    seed_files: tuple[tuple[str, str, bytes], ...] = SEED_FILES
    #: Status words the simulated API says instead of its own (``{"RUNNING": "THROTTLED"}``):
    #: a provider that added a word its clients do not know yet.
    renamed_statuses: Mapping[str, str] = field(default_factory=dict)


FAST_SETTINGS = SimSettings(
    pending_seconds=0.05, running_seconds=0.15, slow_seconds=1.0, list_page_size=2, max_page_size=2
)


@dataclass
class SimFile:
    id: str
    name: str
    content: bytes
    content_type: str
    project_id: str
    created_at: str
    purpose: str = "classify"
    external_file_id: str | None = None

    def as_wire(self) -> dict[str, Any]:
        suffix = self.name.rsplit(".", 1)[1] if "." in self.name else None
        return {
            "id": self.id,
            "name": self.name,
            "project_id": self.project_id,
            "file_type": suffix,
            "purpose": self.purpose,
            "expires_at": None,
            "last_modified_at": self.created_at,
            "external_file_id": self.external_file_id,
            "download_url": None,
        }


@dataclass
class SimJob:
    id: str
    project_id: str
    file_input: str
    input_type: str
    configuration: dict[str, Any]
    transaction_id: str | None
    created_at: datetime
    started: float
    run_seconds: float
    #: The classification, or None: the job will fail.
    result: dict[str, Any] | None
    cancelled_at: float | None = None


@dataclass
class SimState:
    settings: SimSettings
    files: dict[str, SimFile] = field(default_factory=dict)
    parse_jobs: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, SimJob] = field(default_factory=dict)
    #: ``(project, transaction_id)`` → the job it created.
    transactions: dict[tuple[str, str], str] = field(default_factory=dict)
    uploads_ok: int = 0
    upload_times: dict[str, deque[float]] = field(default_factory=dict)
    #: ``("METHOD /path", query pairs)`` of every authorized request, for tests.
    queries: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    #: What each upload and create carried (form fields, JSON body), for the tests
    #: that compare the adapter's requests with the official library's.
    bodies: list[tuple[str, Any]] = field(default_factory=list)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wall_now() -> datetime:
    return datetime.now(UTC)


# -- classification ---------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    _WORD.findall(
        "the and for with that this are from has have its any all contains about into such "
        "other who what which where when was were will can may one"
    )
)


def _keywords(rule: dict[str, str]) -> list[str]:
    words = _WORD.findall(rule["type"].lower()) + [
        w for w in _WORD.findall(rule["description"].lower()) if len(w) >= 3 and w not in _STOP
    ]
    return list(dict.fromkeys(words))


def classify(content: bytes, rules: list[dict[str, str]]) -> dict[str, Any]:
    """The deterministic ``{type, confidence, reasoning}`` of a file under some rules."""
    words = set(_WORD.findall(content.decode("utf-8", errors="replace").lower()))
    best: tuple[tuple[int, int], dict[str, str], list[str], list[str]] | None = None
    for index, rule in enumerate(rules):
        keywords = _keywords(rule)
        matched = [w for w in keywords if w in words]
        type_words = _WORD.findall(rule["type"].lower())
        type_hit = bool(type_words) and all(w in words for w in type_words)
        key = (len(matched) + int(type_hit), -index)
        if matched and (best is None or key > best[0]):
            best = (key, rule, matched, keywords)
    digest = hashlib.sha256(content + repr(rules).encode()).digest()
    jitter = int.from_bytes(digest[:4], "big") % 1000 / 1000 * 0.04
    if best is None:
        return {
            "type": None,
            "confidence": round(0.05 + jitter, 4),
            "reasoning": "None of the rules' words appear in the document, so no type matches.",
        }
    _, rule, matched, keywords = best
    confidence = min(0.99, 0.55 + 0.4 * len(matched) / len(keywords) + jitter)
    return {
        "type": rule["type"],
        "confidence": round(confidence, 4),
        "reasoning": (
            f"The document mentions {', '.join(repr(w) for w in matched)} "
            f"({len(matched)} of {len(keywords)} words of the {rule['type']!r} rule), "
            f"so it best matches {rule['type']!r}."
        ),
    }


def fails(settings: SimSettings, name: str, content: bytes) -> bool:
    marker = settings.fail_marker.lower()
    text = content.decode("utf-8", errors="replace").lower()
    return name in settings.fail_names or marker in name.lower() or marker in text


def run_seconds(settings: SimSettings, name: str) -> float:
    slow = settings.slow_marker and settings.slow_marker in name.lower()
    return settings.running_seconds + (settings.slow_seconds if slow else 0.0)


# -- job views ------------------------------------------------------------------------

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
FAILED_MESSAGE = "Classification failed: the document could not be parsed."


def job_status(job: SimJob, now: float, pending_seconds: float) -> str:
    if job.cancelled_at is not None:
        return "CANCELLED"
    if now < job.started + pending_seconds:
        return "PENDING"
    if now < job.started + pending_seconds + job.run_seconds:
        return "RUNNING"
    return "FAILED" if job.result is None else "COMPLETED"


def job_wire(state: SimState, job: SimJob, now: float) -> dict[str, Any]:
    s = state.settings
    status = job_status(job, now, s.pending_seconds)
    said = s.renamed_statuses.get(status, status)
    if status == "CANCELLED":
        assert job.cancelled_at is not None
        updated = job.created_at + timedelta(seconds=job.cancelled_at - job.started)
    elif status in TERMINAL:
        updated = job.created_at + timedelta(seconds=s.pending_seconds + job.run_seconds)
    elif status == "RUNNING":
        updated = job.created_at + timedelta(seconds=s.pending_seconds)
    else:
        updated = job.created_at
    return {
        "id": job.id,
        "configuration": job.configuration,
        "document_input_type": job.input_type,
        "file_input": job.file_input,
        "project_id": job.project_id,
        "status": said,
        "user_id": SIM_USER_ID,
        "configuration_id": None,
        "created_at": iso(job.created_at),
        "updated_at": iso(updated),
        "error_message": FAILED_MESSAGE if status == "FAILED" else None,
        "parse_job_id": job.file_input if job.input_type == "parse_job_id" else None,
        "result": job.result if status == "COMPLETED" else None,
        "transaction_id": job.transaction_id,
        "usage": None,
    }
