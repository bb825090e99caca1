"""Counting a job's repeated inputs (``record.copies``) from the provider's reports.

A repeat is never sent: while the job runs it is pending (which repeat ends how is known
per item only), then it ends as the input it repeats. Where the report's counts say all
inputs sent ended alike they tell it; otherwise the results do (``copied``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.base import Counts, ItemStatus, JobStatus, StatusReport
from gateway.jobs.records import NoObserver, apply_report, copies_need_outcomes
from gateway.state.store import JobRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job() -> JobRecord:
    # a and b are sent; c repeats a, d repeats b, e repeats a.
    return JobRecord(
        id="j",
        tenant="t",
        key_id="k",
        model="modzy/m@1",
        provider="modzy",
        input_names=("a", "b", "c", "d", "e"),
        created_at=NOW,
        updated_at=NOW,
        copies={"c": "a", "d": "b", "e": "a"},
    )


def report(status: JobStatus, counts: Counts | None) -> StatusReport:
    return StatusReport(status=status, upstream_status=status.value, counts=counts)


def test_the_provider_is_told_of_the_sent_inputs_only():
    assert job().provider_inputs == ("a", "b")


def test_repeats_are_pending_while_the_job_runs():
    running = report(JobStatus.RUNNING, Counts(total=2, succeeded=1, pending=1))
    assert not copies_need_outcomes(job(), running)
    got = apply_report(job(), running, NOW, NoObserver())
    assert got.counts == Counts(total=5, succeeded=1, pending=4)


@pytest.mark.parametrize(
    ("status", "counts", "expected"),
    [
        (JobStatus.SUCCEEDED, Counts(total=2, succeeded=2), Counts(total=5, succeeded=5)),
        (JobStatus.FAILED, Counts(total=2, failed=2), Counts(total=5, failed=5)),
        (JobStatus.SUCCEEDED, None, Counts(total=5, succeeded=5)),  # derived counts
    ],
)
def test_inputs_that_all_ended_alike_count_their_repeats_without_the_results(
    status, counts, expected
):
    done = report(status, counts)
    assert not copies_need_outcomes(job(), done)
    assert apply_report(job(), done, NOW, NoObserver()).counts == expected


def test_mixed_endings_count_each_repeat_as_its_input_ended():
    done = report(JobStatus.PARTIALLY_SUCCEEDED, Counts(total=2, succeeded=1, failed=1))
    assert copies_need_outcomes(job(), done)
    copied = {"a": ItemStatus.SUCCEEDED, "b": ItemStatus.FAILED}
    got = apply_report(job(), done, NOW, NoObserver(), copied=copied)
    assert got.counts == Counts(total=5, succeeded=3, failed=2)


def test_a_job_without_repeats_never_needs_its_results_to_be_counted():
    plain = JobRecord(
        id="j",
        tenant="t",
        key_id="k",
        model="modzy/m@1",
        provider="modzy",
        input_names=("a", "b"),
        created_at=NOW,
        updated_at=NOW,
    )
    done = report(JobStatus.PARTIALLY_SUCCEEDED, Counts(total=2, succeeded=1, failed=1))
    assert not copies_need_outcomes(plain, done)
