"""The alerting rules are valid Prometheus rules, and each alert fires when it should.

Both checks use Debian's ``promtool`` (package ``prometheus``): ``check rules`` for
syntax and PromQL, ``test rules`` for the unit tests in ``alerts_test.yaml`` that
show every alert firing on a bad series and staying quiet on a healthy one.
"""

from __future__ import annotations

import subprocess

import yaml

from tests.observability.support import RULES_DIR, tool

ALERTS = RULES_DIR / "alerts.yaml"
ALERTS_TEST = RULES_DIR / "alerts_test.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
    )


def test_promtool_check_rules():
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules():
    result = promtool("test", "rules", ALERTS_TEST.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_and_documented():
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    tested = {
        case["alertname"] for t in tests for case in t["alert_rule_test"] if case.get("exp_alerts")
    }
    names = {r["alert"] for r in rules}
    assert names == tested, names ^ tested
    required = {
        "GatewayHighErrorRatio",
        "GatewayOverheadP99High",
        "GatewayProviderThrottled",
        "GatewayJobsStuckUnfinished",
    }
    assert required <= names
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
