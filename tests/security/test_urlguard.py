"""T-R6: the URL guard refuses every bad URL before connecting; a loopback canary sees 0 hits."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from aiohttp import web

from gateway.auth.settings import UrlGuardSettings
from gateway.auth.urlguard import UnsafeUrl, UrlGuard


class Hits:
    def __init__(self) -> None:
        self.count = 0


async def counting_server(
    aiohttp_server: Any, host: str, answer: web.Response | None = None, port: int | None = None
):
    hits = Hits()

    async def anything(request: web.Request) -> web.StreamResponse:
        hits.count += 1
        return answer if answer is not None else web.Response(text="canary")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    server = await aiohttp_server(app, host=host, port=port)
    return server, hits


class FakeDns:
    """Names to addresses; a list of answers is served in turn (for rebinding)."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.table.get(host.rstrip("."))
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


def corpus(port: int) -> list[str]:
    p = port
    return [
        # loopback in every spelling
        f"http://127.0.0.1:{p}/",
        f"https://127.0.0.1:{p}/",
        f"http://localhost:{p}/",
        f"http://LOCALHOST.:{p}/",
        f"http://canary.localhost:{p}/",
        f"http://2130706433:{p}/",
        f"http://0x7f000001:{p}/",
        f"http://0x7f.1:{p}/",
        f"http://017700000001:{p}/",
        f"http://0177.0.0.1:{p}/",
        f"http://127.1:{p}/",
        f"http://127.000.000.001:{p}/",
        f"http://%31%32%37.0.0.1:{p}/",
        f"http://①②⑦.0.0.1:{p}/",
        f"  http://127.0.0.1:{p}/",
        f"http://127.0.0.1:{p}#@public.example/",
        f"http://public.example@127.0.0.1:{p}/",
        f"http://[::1]:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://[::ffff:7f00:1]:{p}/",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
        f"http://[::127.0.0.1]:{p}/",
        f"http://[2002:7f00:1::]:{p}/",
        f"http://[64:ff9b::7f00:1]:{p}/",
        f"http://[2001:0:7f00:1::]:{p}/",
        # unspecified
        f"http://0.0.0.0:{p}/",
        f"http://0:{p}/",
        f"http://[::]:{p}/",
        # names that resolve to loopback / private (fake DNS)
        f"http://rebind.example:{p}/",
        f"http://mixed.example:{p}/",
        f"http://127.0.0.1.nip.io:{p}/",
        f"http://unresolvable.example:{p}/",
        # private, link-local, metadata, reserved, multicast
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fe80::1%25eth0]/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        # schemes and forms
        f"ftp://127.0.0.1:{p}/",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{p}/_GET",
        f"dict://127.0.0.1:{p}/",
        "javascript:alert(1)",
        "data:text/plain,hi",
        f"http://public.example\\@127.0.0.1:{p}/",
        "https://user:pass@public.example/",
        "https://public.example/" + "a" * 3000,
        "not a url",
        "",
    ]


DNS = {
    "rebind.example": [["127.0.0.1"]],
    "mixed.example": [["93.184.216.34", "127.0.0.1"]],
    "127.0.0.1.nip.io": [["127.0.0.1"]],
    "public.example": [["93.184.216.34"]],
    "metadata.google.internal": [["169.254.169.254"]],
}

#: Stands in for a public network: 127.0.0.2 is allowed, 127.0.0.1 (the canary) is not.
ALLOW_127_0_0_2 = UrlGuardSettings(
    allow_http=True, allowed_networks=[ipaddress.ip_network("127.0.0.2/32")]
)


async def test_every_bad_url_is_refused_before_connecting(aiohttp_server):
    server, canary = await counting_server(aiohttp_server, "127.0.0.1")
    guard = UrlGuard(UrlGuardSettings(allow_http=True), resolver=FakeDns(dict(DNS)))
    refused = {}
    for url in corpus(server.port):
        with pytest.raises(UnsafeUrl) as info:
            await guard.fetch(url, json={"event": "job.done"})
        refused[url] = info.value.reason
    assert canary.count == 0
    assert len(refused) == len(corpus(server.port))
    # the canary is reachable: the guard, not the network, kept the corpus out
    open_guard = UrlGuard(
        UrlGuardSettings(allow_http=True, allowed_networks=[ipaddress.ip_network("127.0.0.1/32")])
    )
    resp = await open_guard.fetch(f"http://127.0.0.1:{server.port}/hook")
    assert resp.status == 200 and canary.count == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://public.example/", "the scheme must be https"),
        ("https://2130706433/", "IP addresses must be written as four decimal numbers"),
        ("https://[::ffff:10.0.0.1]/", "IPv4-mapped IPv6 addresses are not allowed"),
        ("https://10.1.2.3/", "the host is not public"),
        ("https://nowhere.example/", "the host does not resolve"),
    ],
)
async def test_https_only_by_default_and_reasons(url, reason):
    guard = UrlGuard(UrlGuardSettings(), resolver=FakeDns(dict(DNS)))
    with pytest.raises(UnsafeUrl) as info:
        await guard.check(url)
    assert info.value.reason == reason


async def test_public_https_passes_and_pins_the_checked_address():
    guard = UrlGuard(UrlGuardSettings(), resolver=FakeDns(dict(DNS)))
    target = await guard.check("https://public.example/hooks/1")
    assert target.addresses == ("93.184.216.34",)
    assert (target.host, target.port) == ("public.example", 443)


async def test_redirects_are_not_followed(aiohttp_server):
    server, canary = await counting_server(aiohttp_server, "127.0.0.1")
    to_canary = web.Response(status=302, headers={"Location": f"http://127.0.0.1:{server.port}/"})
    hop, hop_hits = await counting_server(aiohttp_server, "127.0.0.2", to_canary)
    resp = await UrlGuard(ALLOW_127_0_0_2).fetch(f"http://127.0.0.2:{hop.port}/hook")
    assert resp.status == 302
    assert hop_hits.count == 1 and canary.count == 0


async def test_dns_is_resolved_once_and_the_checked_address_is_used(aiohttp_server):
    """DNS rebinding: the name's later answer (loopback) is never used to connect."""
    allowed_server, allowed_hits = await counting_server(aiohttp_server, "127.0.0.2")
    port = allowed_server.port
    # the canary listens on the same port of 127.0.0.1: a re-resolution would reach it
    _, canary = await counting_server(aiohttp_server, "127.0.0.1", port=port)
    dns = FakeDns({"rebind.test": [["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]]})
    resp = await UrlGuard(ALLOW_127_0_0_2, resolver=dns).fetch(f"http://rebind.test:{port}/hook")
    assert resp.status == 200
    assert dns.calls == ["rebind.test"]
    assert allowed_hits.count == 1 and canary.count == 0


async def test_a_name_with_any_private_answer_is_refused(aiohttp_server):
    allowed_server, hits = await counting_server(aiohttp_server, "127.0.0.2")
    dns = FakeDns({"mixed.test": [["127.0.0.2", "10.0.0.1"]]})
    with pytest.raises(UnsafeUrl):
        await UrlGuard(ALLOW_127_0_0_2, resolver=dns).fetch(
            f"http://mixed.test:{allowed_server.port}/"
        )
    assert hits.count == 0
