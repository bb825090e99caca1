"""Every Redis key the gateway writes, built in one place under one prefix.

Keys are per tenant where the data is (the listing index, results, idempotency
keys, limits), so a lookup with another tenant's name finds nothing. Every key is
written with a TTL; the listing index is trimmed by age and by count on every insert.

On a Redis Cluster, keys that one command, script or MULTI uses together must share a
hash slot, so they share a hash tag (the part in braces): the limit keys carry the
tenant (``{tenant}``: one script charges a credential's and its tenant's buckets), the
pacing keys the provider account (``{account}``: one script reads the schedule and the
pause), the failed-authentication keys a hash of the client address (one script reads its
failures and its known-good credentials), the engine's tracking keys one tag of their
own (``{engine}``: one script moves a job's entry and the due index together). No other
keys are used together (a submit's record and index go in one non-transactional
pipeline, which redis-py splits by node), so the rest stay untagged and spread over the
cluster. Tenant names and account hashes contain no braces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keyspace:
    prefix: str = "gw"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def tenant_index(self, tenant: str) -> str:
        """A sorted set of the tenant's job ids, scored by creation time."""
        return f"{self.prefix}:jobs:{tenant}"

    def results(self, tenant: str, job_id: str) -> str:
        return f"{self.prefix}:res:{tenant}:{job_id}"

    def fresh(self, job_id: str) -> str:
        """Exists while the job's stored status is recent enough to reuse."""
        return f"{self.prefix}:fresh:{job_id}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def flight_error(self, name: str, token: str) -> str:
        return f"{self.prefix}:flighterr:{name}:{token}"

    def idempotency(self, tenant: str, key: str) -> str:
        # Hashed: the caller's key may be long or contain anything.
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}:idem:{tenant}:{digest}"

    def cached_item(self, digest: str) -> str:
        """An item cache entry; ``digest`` already covers its scope (a tenant or global)."""
        return f"{self.prefix}:item:{digest}"

    def rate_bucket(self, tenant: str, who: str, policy: str) -> str:
        """A GCRA bucket: ``who`` is ``k<hash of the key id>`` or ``tenant``."""
        return f"{self.prefix}:rl:{{{tenant}}}:{who}:{policy}"

    def job_slots(self, tenant: str, who: str) -> str:
        """A sorted set of a credential's unfinished jobs, scored by their expiry."""
        return f"{self.prefix}:slots:{{{tenant}}}:{who}"

    def event_streams(self, tenant: str, who: str) -> str:
        """A sorted set of a credential's open event streams, scored by their lease's end."""
        return f"{self.prefix}:streams:{{{tenant}}}:{who}"

    def daily_jobs(self, tenant: str, provider: str) -> str:
        """A hash of jobs per UTC day (field: the day number) for a tenant and provider."""
        return f"{self.prefix}:quota:{{{tenant}}}:{provider}"

    def auth_failures(self, address: str) -> str:
        """A sorted set of a client address's recent failed authentications (scored by
        when, in ms). Tagged by the address's hash: one script reads it with the next."""
        return f"{self.prefix}:authfail:{{{_address_tag(address)}}}"

    def auth_known(self, address: str) -> str:
        """A sorted set of digests of credentials that verified from a client address,
        scored by when each stops being known good (ms)."""
        return f"{self.prefix}:authok:{{{_address_tag(address)}}}"

    def pacing(self, account: str) -> str:
        """A provider account's GCRA bucket. The hash tag keeps it in its pause's
        cluster slot: one script reads both."""
        return f"{self.prefix}:pace:{{{account}}}"

    def pause(self, account: str) -> str:
        """A provider account's Retry-After pause (expires when the pause ends)."""
        return f"{self.prefix}:pause:{{{account}}}"

    def breaker(self, account: str) -> str:
        """A provider account's circuit breaker, shared by every replica (a hash:
        ``gateway.limits.breaker_record``). Tagged like the account's pacing keys."""
        return f"{self.prefix}:breaker:{{{account}}}"

    def tracked(self, job_id: str) -> str:
        """The engine's entry of one unfinished job (a hash: tenant, seq, delay, polls)."""
        return f"{self.prefix}:trk:{{engine}}:{job_id}"

    def tracked_due(self) -> str:
        """A sorted set of tracked job ids, scored by when their next check is due (ms)."""
        return f"{self.prefix}:trk:{{engine}}"

    def events(self) -> str:
        """The pub/sub channel of job changes (a message is the job id)."""
        return f"{self.prefix}:events"

    def engine_queue(self) -> str:
        """The engine task queue's name: streaq keeps its keys under ``streaq:<name>``,
        all in one cluster slot (its scripts use several at once)."""
        return f"{{{self.prefix}-engine}}"


def _address_tag(address: str) -> str:
    # Hashed: addresses are personal data, and IPv6 ones are long; no braces either way.
    return hashlib.sha256(address.encode()).hexdigest()[:20]
