"""``gateway check-provider``: does each configured provider take its credential?

One authenticated, read-only call per provider (its type's ``CredentialCheck``: a model
list, a key-info endpoint, or, where the provider has no such read, a lookup of an id
that cannot exist), answered in one plain line. It goes straight through aiohttp rather
than the provider's ``Upstream``: retries, pacing and the breaker would blur the one
thing asked (which status, from which URL, how fast), and it must run without Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from adapters.registry import provider_type
from gateway.config.settings import ProviderSettings


@dataclass(frozen=True, slots=True)
class CheckResult:
    provider: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{self.provider}: {self.message}"


def _where(provider: ProviderSettings) -> str:
    cred = provider.credential
    if cred.env is not None:
        return f"check {cred.env}"
    return f"check the file {cred.file}"


async def check_provider(provider: ProviderSettings) -> CheckResult:
    """Make the provider type's credential check once and say what it showed."""
    check = provider_type(provider.type).credential_check
    url = provider.base_url.rstrip("/") + check.path
    secret = provider.secret.get_secret_value() if provider.secret is not None else ""
    headers = provider_type(provider.type).auth_headers(secret)
    timeout = aiohttp.ClientTimeout(
        total=provider.timeouts.total,
        connect=provider.timeouts.connect,
        sock_read=provider.timeouts.read,
    )
    started = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            await response.read()
            status = response.status
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or str(exc.os_error)
        return CheckResult(
            provider.name,
            False,
            f"unreachable: cannot connect to {exc.host}:{exc.port} ({reason}) "
            f"— check base_url ({provider.base_url})",
        )
    except TimeoutError:
        return CheckResult(
            provider.name,
            False,
            f"no answer within {provider.timeouts.total:g} s from GET {url} "
            f"— check base_url and the network",
        )
    except aiohttp.ClientError as exc:
        return CheckResult(
            provider.name,
            False,
            f"call failed: {type(exc).__name__}: {exc} — check base_url ({provider.base_url})",
        )
    ms = round((time.perf_counter() - started) * 1000)
    answered = f"HTTP {status} from GET {url}, {ms} ms"
    if status in check.ok_statuses:
        note = f"; {check.note}" if check.note else ""
        return CheckResult(provider.name, True, f"OK ({answered}{note})")
    if status in (401, 403):
        return CheckResult(
            provider.name,
            False,
            f"credential refused (HTTP {status} from GET {url}) — {_where(provider)}",
        )
    if status in (404, 405) or 300 <= status < 400:
        return CheckResult(
            provider.name,
            False,
            f"unexpected answer ({answered}): this does not look like a {provider.type} API "
            f"— check base_url ({provider.base_url})",
        )
    if status == 429 or status >= 500:
        return CheckResult(
            provider.name,
            False,
            f"provider busy or failing ({answered}) — the credential was not judged; try again",
        )
    return CheckResult(provider.name, False, f"unexpected answer ({answered})")


async def check_providers(providers: Sequence[ProviderSettings]) -> list[CheckResult]:
    """Every provider checked at once, results in the order given."""
    return list(await asyncio.gather(*(check_provider(p) for p in providers)))
