"""The LlamaCloud simulator's data: settings, stored files and jobs, and their wire views.

Classification is deterministic: each rule's ``type`` and the words of its
``description`` are looked for in the file's text; the rule with the most words found
wins, with a confidence derived from the share found and a hash of the content. A
file whose name or text contains ``fail`` (any case), or whose name is listed in
``SimSettings.fail_names``, gets ``result: null``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import deque
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
        "3f1c2a8e-5b7d-4c1e-9a2f-6d8e0b4c7a15",
        "sample-contract.txt",
        b"SERVICE AGREEMENT between the parties. Terms and conditions, signatures, governing law.",
    ),
)


@dataclass(frozen=True, slots=True)
class SimSettings:
    api_key: str = SIMULATOR_KEY
    #: How long a job stays PENDING before it ends.
    pending_seconds: float = 3.0
    #: Results page size when the client sends none ([inferred]: one page by default).
    results_page_size: int = 100
    #: The most items a results page holds, whatever page_size asks for.
    max_page_size: int = 100
    list_page_size: int = 20
    fail_marker: str = "fail"
    fail_names: frozenset[str] = frozenset()
    #: Uploads after this many successful ones answer 500 (None: never).
    fail_upload_after: int | None = None
    #: Uploads allowed per project per window (None: unlimited); the docs say 50 per 5 s.
    upload_rate_limit: int | None = 50
    upload_rate_window: float = 5.0
    seed_files: tuple[tuple[str, str, bytes], ...] = SEED_FILES


FAST_SETTINGS = SimSettings(
    pending_seconds=0.2, results_page_size=2, max_page_size=2, list_page_size=2
)


@dataclass
class SimFile:
    id: str
    name: str
    content: bytes
    content_type: str
    project_id: str
    created_at: str
    external_file_id: str | None = None

    def as_wire(self) -> dict[str, Any]:
        suffix = self.name.rsplit(".", 1)[1] if "." in self.name else None
        return {
            "id": self.id,
            "name": self.name,
            "project_id": self.project_id,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "file_size": len(self.content),
            "file_type": suffix,
            "external_file_id": self.external_file_id,
            "data_source_id": None,
            "last_modified_at": self.created_at,
            "permission_info": None,
            "resource_info": {"content_type": self.content_type},
        }


@dataclass
class SimJob:
    id: str
    project_id: str
    file_ids: list[str]
    rules: list[dict[str, str]]
    mode: str
    parsing_configuration: dict[str, Any]
    created_at: datetime
    started: float
    #: One classification (or None: failed) per file id, fixed at creation.
    results: dict[str, dict[str, Any] | None]


@dataclass
class SimState:
    settings: SimSettings
    files: dict[str, SimFile] = field(default_factory=dict)
    jobs: dict[str, SimJob] = field(default_factory=dict)
    uploads_ok: int = 0
    upload_times: dict[str, deque[float]] = field(default_factory=dict)
    #: ``("METHOD /path", query)`` of every authorized request, for tests.
    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)


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


def fails(settings: SimSettings, file: SimFile) -> bool:
    marker = settings.fail_marker.lower()
    text = file.content.decode("utf-8", errors="replace").lower()
    return file.name in settings.fail_names or marker in file.name.lower() or marker in text


# -- job views ------------------------------------------------------------------------


def job_status(job: SimJob, now: float, pending_seconds: float) -> str:
    if now < job.started + pending_seconds:
        return "PENDING"
    failed = sum(1 for r in job.results.values() if r is None)
    if failed == 0:
        return "SUCCESS"
    return "ERROR" if failed == len(job.results) else "PARTIAL_SUCCESS"


def job_wire(state: SimState, job: SimJob, now: float) -> dict[str, Any]:
    status = job_status(job, now, state.settings.pending_seconds)
    done = job.created_at + timedelta(seconds=state.settings.pending_seconds)
    return {
        "id": job.id,
        "project_id": job.project_id,
        "rules": job.rules,
        "status": status,
        "user_id": SIM_USER_ID,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.created_at if status == "PENDING" else done),
        "effective_at": iso(job.created_at),
        "error_message": "Classification failed for every file." if status == "ERROR" else None,
        "job_record_id": None,
        "mode": job.mode,
        "parsing_configuration": job.parsing_configuration,
    }


def result_item(state: SimState, job: SimJob, file_id: str) -> dict[str, Any]:
    done = iso(job.created_at + timedelta(seconds=state.settings.pending_seconds))
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"llamacloud-sim/{job.id}/{file_id}")),
        "classify_job_id": job.id,
        "file_id": file_id,
        "created_at": done,
        "updated_at": done,
        "result": job.results[file_id],
    }
