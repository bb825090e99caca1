"""A finished job's answers, kept as the bytes they were rendered to (issue 16).

A finished job never changes: its view, its results pages and its exports are the
same bytes on every read. Building them is most of what a read costs (pydantic models,
``model_dump``, ``json.dumps``, the CSV writer), so each is rendered once per process
and served from here after. What a read must still do is unchanged and done before the
bytes are looked up: the caller is authenticated and rate-limited, the job is found for
the caller's tenant (the key holds the tenant: another tenant's read never reaches
another's entry), its scope checked, and the canonical log line and the metrics get the
same facts. Only *settled* jobs are kept (``JobRecord.settled``): done, and no webhook
delivery still pending, whose outcome the job's view shows.

Bounded by the bytes held (``server.rendered_cache_bytes``), least recently used out
first; an answer larger than an eighth of the bound is rendered on every read instead
of pushing everything else out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from gateway.state.store import JobRecord

#: What a cached answer is looked up by: the job, then which answer (route, format,
#: page, filters) as the handler names it.
AnswerKey = tuple[str, str, Hashable]


class RenderedAnswers:
    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._held = 0
        self._entries: OrderedDict[AnswerKey, bytes] = OrderedDict()

    @property
    def held_bytes(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._held = 0

    def answer(self, record: JobRecord, variant: Hashable, render: Callable[[], bytes]) -> bytes:
        """The bytes of ``variant`` of ``record``'s answers: kept ones if the job is
        settled and they were rendered before, else ``render()`` (kept if settled)."""
        if not record.settled or self._max <= 0:
            return render()
        key: AnswerKey = (record.tenant, record.id, variant)
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
            return body
        body = render()
        size = len(body)
        if size > self._max // 8:
            return body
        self._entries[key] = body
        self._held += size
        while self._held > self._max:
            _, dropped = self._entries.popitem(last=False)
            self._held -= len(dropped)
        return body
