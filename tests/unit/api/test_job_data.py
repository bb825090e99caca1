"""``job_data`` builds a job's view without the response model: it must say exactly what
``dump(job_view(...))`` says, key order included (the bytes of every answer are pinned by
tests/api/test_golden.py; this covers every shape a record can take)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.base import Counts, ErrorInfo, JobStatus
from gateway.api.views import dump, job_data, job_view
from gateway.state.store import JobRecord, Notification

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
OFFSET = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

SHAPES = list(
    itertools.product(
        list(JobStatus),
        [None, Counts(3, 1, 1, 1)],
        [None, ErrorInfo("upstream_failed", "it broke \u00e9\n")],
        [None, "sentiment"],
        [
            None,
            Notification(),
            Notification("delivered", 2, "HTTP 500", T0),
            Notification("failed", 8, None, None),
        ],
        [None, OFFSET],
    )
)


@pytest.mark.parametrize(("status", "counts", "error", "alias", "notification", "finished"), SHAPES)
def test_job_data_is_the_views_dump(status, counts, error, alias, notification, finished):
    record = JobRecord(
        id="job_x",
        tenant="t",
        key_id="k",
        model="modzy/ed542963de@1.0.1",
        provider="modzy",
        input_names=("a", "b", "c"),
        created_at=T0,
        updated_at=OFFSET,
        status=status,
        upstream_id="u-1" if counts else None,
        upstream_status="IN_PROGRESS" if counts else None,
        counts=counts,
        error=error,
        finished_at=finished,
        metadata={"team": "search", "ünï": "cødé"},
        alias=alias,
        notification=notification,
    )
    expected = dump(job_view(record))
    got = job_data(record)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # the same keys in the same order
