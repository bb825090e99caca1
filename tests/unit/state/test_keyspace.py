"""Redis Cluster hash slots of the gateway's keys: what one script uses shares a slot."""

from __future__ import annotations

from redis.crc import key_slot

from gateway.state.keyspace import Keyspace

KEYS = Keyspace("gw")


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_credentials_and_its_tenants_rate_buckets_share_a_slot():
    tenant = {
        slot(KEYS.rate_bucket("acme", who, p))
        for who in ("kab12", "tenant")
        for p in ("read", "submit")
    }
    assert len(tenant) == 1
    # The job counters are one key per script, tagged by tenant all the same.
    assert slot(KEYS.job_slots("acme", "kab12")) in tenant
    assert slot(KEYS.daily_jobs("acme", "modzy")) in tenant


def test_a_provider_accounts_schedule_and_pause_share_a_slot():
    assert slot(KEYS.pacing("0f3a")) == slot(KEYS.pause("0f3a"))


def test_job_records_are_spread_over_the_cluster():
    """Untagged: a big tenant's records do not pile up on one node."""
    slots = {slot(KEYS.job(f"job_{i:04d}")) for i in range(200)}
    assert len(slots) > 150


def test_an_addresss_failures_and_known_credentials_share_a_slot_and_hide_the_address():
    for address in ("198.51.100.7", "2001:db8::1", "unknown"):
        failures, known = KEYS.auth_failures(address), KEYS.auth_known(address)
        assert slot(failures) == slot(known)
        assert address not in failures and address not in known
    spread = {slot(KEYS.auth_failures(f"198.51.100.{i}")) for i in range(200)}
    assert len(spread) > 150
