"""The chart never ships a configuration the gateway rejects.

For every scenario: take gateway.yaml out of the rendered ConfigMap, lay out the credential
files and environment the Deployment gives the pod (from the rendered Secret, or stand-ins for
an existing Secret), and run the real `gateway check-config` on it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.helm import chart

NAMES = sorted(chart.SCENARIOS)
# What an operator's own Secret would hold, for scenarios that use existingSecret.
EXISTING_API_KEYS = [{"id": "ops", "sha256": "b" * 64, "tenant": "platform", "scopes": ["admin"]}]
EXISTING_REDIS_URL = "redis://:stand-in@redis.data.svc:6379/0"
EXISTING_HMAC_SECRET = "stand-in-hmac-secret-of-64-bytes-" + "x" * 31
EXISTING_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"stand-in-webhook-secret-32-bytes").decode()


def _public_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def _existing_secret(values) -> dict[str, str]:
    """Stand-ins of the right shape for every key an operator's Secret must hold."""
    data = {"api-keys.json": json.dumps(EXISTING_API_KEYS), "redis-url": EXISTING_REDIS_URL}
    for name, p in values["providers"].items():
        data[p.get("secretKey", name)] = f"stand-in-credential-{name}"
    for kid, k in values["jwtKeys"].items():
        pem = k["type"] == "publicKey"
        data[k.get("secretKey", f"jwt-{kid}")] = _public_key_pem() if pem else EXISTING_HMAC_SECRET
    for name, w in values["webhookSecrets"].items():
        data[w.get("secretKey", f"webhook-{name}")] = EXISTING_WEBHOOK_SECRET
    return data


def _secret_value(docs, values, name: str, key: str) -> str:
    """One key of the Secret the pod reads: the chart's own (which must hold every key the
    pod asks for, or the pod would not start), or a stand-in for an operator's Secret."""
    owned = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    if owned:
        assert key in owned[0]["data"], f"the chart's Secret lacks {key}"
        return base64.b64decode(owned[0]["data"][key]).decode()
    existing = _existing_secret(values)
    assert key in existing, f"the pod reads {key}, a key values.yaml does not document"
    return existing[key]


def _pod_files_and_env(docs, values, root: Path) -> tuple[Path, dict[str, str]]:
    """Write the pod's /etc/gateway under root; return the config path and the pod's env."""
    spec = chart.gateway_deployment(docs)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    config_map = chart.find(docs, "ConfigMap", f"{chart.RELEASE}-gateway")
    (volume,) = (v for v in spec["volumes"] if v["name"] == "config")
    env: dict[str, str] = {}
    for source in volume["projected"]["sources"]:
        if "configMap" in source:
            assert source["configMap"]["name"] == config_map["metadata"]["name"]
            for item in source["configMap"]["items"]:
                _write(root / item["path"], config_map["data"][item["key"]])
        else:
            for item in source["secret"]["items"]:
                value = _secret_value(docs, values, source["secret"]["name"], item["key"])
                _write(root / item["path"], value)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = _secret_value(docs, values, ref["name"], ref["key"])
    path = root / container["args"][2].removeprefix("/etc/gateway/")
    return path, env


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def check_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only the pod's variables: a GATEWAY_* of the developer's shell must not help or hurt.
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=base | env,
        cwd=path.parent,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("name", NAMES)
def test_rendered_config_passes_check_config(name, tmp_path):
    docs, values = chart.scenario(name), chart.values_of(name)
    path, env = _pod_files_and_env(docs, values, tmp_path)
    result = check_config(path, env)
    assert result.returncode == 0, result.stderr
    keys = len(EXISTING_API_KEYS) if values["existingSecret"] else len(values["apiKeys"])
    assert (
        f"{len(values['providers'])} providers, "
        f"{sum(len(p.get('models', [])) for p in values['providers'].values())} models, "
        f"{len(values['config']['aliases'])} aliases, {keys} API keys"
    ) in result.stdout


@pytest.mark.parametrize("name", NAMES)
def test_every_provider_gets_its_credential(name, tmp_path):
    docs, values = chart.scenario(name), chart.values_of(name)
    path, env = _pod_files_and_env(docs, values, tmp_path)
    config = yaml.safe_load(path.read_text())
    assert sorted(p["name"] for p in config["providers"]) == sorted(values["providers"])
    for p in config["providers"]:
        cred = p["credential"]
        if values["credentialsAs"] == "env":
            assert cred == {"env": "PROVIDER_CREDENTIAL_" + p["name"].upper().replace("-", "_")}
            assert env[cred["env"]]
        else:
            assert cred == {"file": f"credentials/{p['name']}"}
            assert (path.parent / cred["file"]).read_text()
    if values["credentialsAs"] == "file":
        assert not any(k.startswith("PROVIDER_CREDENTIAL_") for k in env)


@pytest.mark.parametrize("name", ["production", "existing-secret"])
def test_jwt_keys_are_files_beside_the_config(name, tmp_path):
    docs, values = chart.scenario(name), chart.values_of(name)
    path, _ = _pod_files_and_env(docs, values, tmp_path)
    jwt = yaml.safe_load(path.read_text())["auth"]["jwt"]
    assert [k["kid"] for k in jwt["keys"]] == sorted(values["jwtKeys"])
    for key in jwt["keys"]:
        kind = values["jwtKeys"][key["kid"]]["type"]
        field = "public_key_file" if kind == "publicKey" else "secret_file"
        assert key[field] == f"jwt/{key['kid']}"
        assert (path.parent / key[field]).read_text().strip()


@pytest.mark.parametrize("name", ["production", "existing-secret"])
def test_webhook_secrets_are_files_beside_the_config(name, tmp_path):
    docs, values = chart.scenario(name), chart.values_of(name)
    path, _ = _pod_files_and_env(docs, values, tmp_path)
    secrets = yaml.safe_load(path.read_text())["webhooks"]["secrets"]
    wanted = values["webhookSecrets"]
    assert [(s["tenant"], s["file"]) for s in secrets] == [
        (wanted[n]["tenant"], f"webhooks/{n}") for n in sorted(wanted)
    ]
    for entry in secrets:
        assert (path.parent / entry["file"]).read_text().startswith("whsec_")


def test_secret_values_never_reach_the_configmap():
    docs = chart.scenario("production")
    config = chart.find(docs, "ConfigMap", f"{chart.RELEASE}-gateway")["data"]["gateway.yaml"]
    secrets = chart.values_of("production")["secretValues"]
    for value in [*secrets["providers"].values(), secrets["redisUrl"]]:
        assert value not in config
    for pem in secrets["jwtKeys"].values():
        assert pem.splitlines()[1] not in config
    for value in secrets["webhookSecrets"].values():
        assert value not in config
    assert "api_keys" not in yaml.safe_load(config)  # apiKeysIn: secret


def test_api_keys_in_the_configmap_when_asked():
    docs = chart.scenario("tryout")
    config = yaml.safe_load(
        chart.find(docs, "ConfigMap", f"{chart.RELEASE}-gateway")["data"]["gateway.yaml"]
    )
    assert [k["id"] for k in config["api_keys"]] == ["demo"]
    env = chart.gateway_deployment(docs)["spec"]["template"]["spec"]["containers"][0].get("env")
    assert not any(v["name"] == "GATEWAY_API_KEYS" for v in env or [])
    assert config["redis"]["url"] == "redis://gw-gateway-redis:6379/0"


def test_existing_secret_is_referenced_not_rendered():
    docs = chart.scenario("existing-secret")
    assert not [d for d in docs if d["kind"] == "Secret"]
    template = chart.gateway_deployment(docs)["spec"]["template"]
    refs = {
        v["name"]: v["valueFrom"]["secretKeyRef"]
        for v in template["spec"]["containers"][0]["env"]
        if "valueFrom" in v
    }
    assert {r["name"] for r in refs.values()} == {"inference-gateway-credentials"}
    assert refs["PROVIDER_CREDENTIAL_VODY"]["key"] == "vody-token"
    assert refs["GATEWAY_API_KEYS"]["key"] == "api-keys.json"
    assert refs["GATEWAY_REDIS__URL"]["key"] == "redis-url"
    # The chart cannot see an operator's Secret, so it cannot hash it either.
    assert "checksum/secret" not in template["metadata"]["annotations"]


def test_check_config_catches_what_the_schema_cannot(tmp_path):
    # An alias to a provider that is not configured passes the values schema; the gateway's
    # own validation is what refuses it, which is why every scenario goes through it.
    docs = chart.render(
        (chart.SCENARIOS["minimal"],), ('config.aliases={"sentiment":"nowhere/model"}',)
    )
    path, env = _pod_files_and_env(docs, chart.values_of("minimal"), tmp_path)
    result = check_config(path, env)
    assert result.returncode == 1
    assert "aliases.sentiment" in result.stderr
