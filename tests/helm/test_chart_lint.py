"""T-P1: `helm lint --strict` passes on every scenario; bad values are refused, loudly.

Refusals come from two places: values.schema.json (types, ranges, names; Helm enforces it on
lint, template, install and upgrade) and the chart's validateValues (combinations no schema
can express), which lists every problem in one message.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.helm import chart

PROVIDER = '{"m":{"type":"modzy","base_url":"https://modzy.example/api"}}'
CREDENTIAL = 'secretValues.providers={"m":"k"}'


@pytest.mark.parametrize("name", sorted(chart.SCENARIOS))
def test_lint_strict_passes(name):
    result = chart.lint((chart.SCENARIOS[name],))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[ERROR]" not in result.stdout and "[WARNING]" not in result.stdout


def test_scenarios_cover_what_the_issue_asks():
    assert {"minimal", "production", "existing-secret"} <= set(chart.SCENARIOS)


@pytest.mark.parametrize(
    ("sets", "set_strings", "field"),
    [
        ((), ("replicaCount=three",), "replicaCount"),
        (("replicaCount=-1",), (), "replicaCount"),
        (("service.port=0",), (), "service.port"),
        (("terminationGracePeriodSeconds=-5",), (), "terminationGracePeriodSeconds"),
        (("config.max_body_bytes=-1",), (), "config.max_body_bytes"),
        (("config.max_wait_seconds=90",), (), "config.max_wait_seconds"),
        (("config.server.port=70000",), (), "config.server.port"),
        (("autoscaling.targetCPUUtilizationPercentage=150",), (), "targetCPUUtilization"),
        (("preStopSleepSeconds=-1",), (), "preStopSleepSeconds"),
        ((), ("image.tag=latest",), "image.tag"),
        ((), ("credentialsAs=inline",), "credentialsAs"),
        (
            ('providers={"Bad_Name":{"type":"modzy","base_url":"https://x.example"}}',),
            (),
            "Bad_Name",
        ),
        (('providers={"m":{"type":"openai","base_url":"https://x.example"}}',), (), "type"),
        (('providers={"m":{"type":"modzy","base_url":"ftp://x"}}',), (), "base_url"),
        (('apiKeys={"k":{"sha256":"not-a-hash","tenant":"t"}}',), (), "sha256"),
        (('apiKeys={"k":{"sha256":"' + "a" * 64 + '"}}',), (), "tenant"),
        (('jwtKeys={"k1":{"type":"pem","algorithms":["ES256"]}}',), (), "jwtKeys.k1.type"),
        (('jwtKeys={"k1":{"type":"secret","algorithms":["none"]}}',), (), "algorithms"),
        (('webhookSecrets={"w":{"tenant":"no spaces"}}',), (), "tenant"),
        (('secretValues.webhookSecrets={"w":"not-whsec"}',), (), "webhookSecrets"),
        (("metrics.port=0",), (), "metrics.port"),
        ((), ("metrics.port=9102",), "metrics.port"),
        (("replicas=3",), (), "replicas"),  # a typo of replicaCount
        ((), ("redis.internal.persistence.appendfsync=no",), "appendfsync"),
        ((), ("redis.internal.persistence.size=lots",), "size"),
        (('config.aliases={"s":{"targets":"m/x","cache":{"itemz":true}}}',), (), "aliases"),
        (('config.aliases={"s":{"cache":{"items":true}}}',), (), "aliases"),
    ],
)
def test_schema_refuses_bad_values(sets, set_strings, field):
    result = chart.template(sets=sets, set_strings=set_strings)
    assert result.returncode != 0, f"accepted {sets or set_strings}"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert field in result.stderr


def test_lint_enforces_the_schema_too():
    result = chart.lint(set_strings=("replicaCount=three",))
    assert result.returncode != 0
    assert "replicaCount" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("terminationGracePeriodSeconds=20",),
            "terminationGracePeriodSeconds (20) must exceed preStopSleepSeconds + "
            "config.server.shutdown_timeout + the engine's shutdown grace + 2 (32)",
        ),
        (
            ('config.providers=[{"name":"x"}]',),
            "config.providers is set by the chart",
        ),
        (
            (f"providers={PROVIDER}",),
            "providers.m: no credential; set secretValues.providers.m",
        ),
        (
            ("redis.internal.enabled=true", 'redis.url="redis://r:6379/0"'),
            "exclude each other",
        ),
        (
            ("redis.urlFromSecret=true",),
            "redis.urlFromSecret needs secretValues.redisUrl",
        ),
        (
            ('existingSecret="mine"', 'apiKeys={"k":{"sha256":"' + "a" * 64 + '","tenant":"t"}}'),
            "apiKeys is unused with existingSecret",
        ),
        (
            ("autoscaling.enabled=true",),
            "autoscaling needs resources.requests.cpu",
        ),
        (
            ('config.redis={"url":"redis://r:6379/0"}',),
            "config.redis.url is set by the chart: use redis.url",
        ),
        (
            ('jwtKeys={"k1":{"type":"secret","algorithms":["HS256"]}}',),
            "jwtKeys needs config.auth.jwt",
        ),
        (
            ("config.server.metrics_port=9102",),
            "config.server.metrics_port is set by the chart: use metrics.port",
        ),
        (
            ("config.server.metrics_on_main_port=false",),
            "config.server.metrics_on_main_port is set by the chart: use metrics.port",
        ),
        (
            ("metrics.port=8080",),
            "metrics.port (8080) must differ from config.server.port",
        ),
        (
            (
                'jwtKeys={"k1":{"type":"secret","algorithms":["HS256"]}}',
                'config.auth={"jwt":{"issuer":"i","audience":"a"}}',
            ),
            "jwtKeys.k1: no key material; set secretValues.jwtKeys.jwt-k1",
        ),
        (
            ('webhookSecrets={"acme":{"tenant":"acme"}}',),
            "webhookSecrets.acme: no secret; set secretValues.webhookSecrets.webhook-acme",
        ),
        (
            ('config.webhooks={"secrets":[{"tenant":"acme","env":"WHSEC"}]}',),
            "config.webhooks.secrets is set by the chart: use webhookSecrets",
        ),
        (
            (
                'existingSecret="mine"',
                'secretValues.webhookSecrets={"webhook-a":"whsec_' + "A" * 32 + '"}',
            ),
            "secretValues.webhookSecrets is unused with existingSecret",
        ),
    ],
)
def test_contradictory_values_are_refused(sets, message):
    result = chart.template(sets=sets)
    assert result.returncode != 0
    assert message in result.stderr


def test_every_problem_is_reported_at_once():
    result = chart.template(
        sets=(
            "terminationGracePeriodSeconds=10",
            f"providers={PROVIDER}",
            "autoscaling.enabled=true",
        )
    )
    assert result.returncode != 0
    problems = re.findall(r"^\s+- (.+)$", result.stderr, re.MULTILINE)
    assert len(problems) == 3, result.stderr


def test_a_valid_override_is_accepted():
    result = chart.template(sets=(f"providers={PROVIDER}", CREDENTIAL, "replicaCount=3"))
    assert result.returncode == 0, result.stderr


def test_chart_metadata_follows_ct_lint():
    meta = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "gateway"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["kubeVersion"].startswith(">=1.29")
    assert meta["maintainers"] and all(m.get("name") for m in meta["maintainers"])
    assert meta["appVersion"] != "latest"


def _value_paths(text: str):
    """(dotted path, line number) of every mapping key in values.yaml, outside lists."""
    stack: list[tuple[int, str]] = []
    list_indent = -1  # inside a list item while keys are indented deeper than its dash
    for n, line in enumerate(text.splitlines()):
        item = re.match(r"^( *)- ", line)
        if item:
            list_indent = len(item.group(1))
            continue
        m = re.match(r"^( *)([A-Za-z_][A-Za-z0-9_-]*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        if indent > list_indent >= 0:
            continue
        list_indent = -1
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        yield ".".join(k for _, k in stack), n


# Blocks passed through as Kubernetes objects, documented once by the block's own comment.
FREE_FORM = (
    "podSecurityContext.",
    "securityContext.",
    "resources.",
    "redis.internal.resources.",
    "probes.startup.",
    "probes.readiness.",
    "probes.liveness.",
)


def test_every_value_is_documented_by_a_comment_naming_it():
    text = (chart.CHART / "values.yaml").read_text()
    lines = text.splitlines()
    missing = []
    for path, n in _value_paths(text):
        if path.startswith(FREE_FORM):
            continue
        j = n - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            j -= 1
        block = [ln.strip() for ln in lines[j + 1 : n]]
        if not any(ln.startswith(f"# {path} --") for ln in block):
            missing.append(path)
    assert missing == []
