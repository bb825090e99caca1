"""T-P2: every scenario renders manifests valid for Kubernetes 1.29, with a hardened workload.

Built-in kinds are validated by kubernetes-validate (strict: unknown fields fail); the two
Prometheus Operator kinds by tests/helm/crd_schemas.py. No rendered document goes unchecked.
"""

from __future__ import annotations

import hashlib

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.helm import chart
from tests.helm.crd_schemas import BY_KIND

NAMES = sorted(chart.SCENARIOS)
SELECTOR = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": chart.RELEASE}


@pytest.mark.parametrize("name", NAMES)
def test_every_manifest_is_valid_for_the_oldest_supported_kubernetes(name):
    docs = chart.scenario(name)
    assert docs
    for doc in docs:
        if doc["kind"] in BY_KIND:
            jsonschema.validate(doc, BY_KIND[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, chart.KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", NAMES)
def test_every_pod_meets_the_restricted_pod_security_standard(name):
    for where, spec in chart.pod_specs(chart.scenario(name)):
        pod = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, where
        assert spec.get("hostNetwork") is None and spec.get("hostPID") is None, where
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            run_as_non_root = sc.get("runAsNonRoot", pod.get("runAsNonRoot"))
            run_as_user = sc.get("runAsUser", pod.get("runAsUser"))
            seccomp = sc.get("seccompProfile", pod.get("seccompProfile"))
            assert run_as_non_root is True, where
            assert isinstance(run_as_user, int) and run_as_user > 0, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert seccomp == {"type": "RuntimeDefault"}, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert "privileged" not in sc, where


@pytest.mark.parametrize("name", NAMES)
def test_the_gateway_runs_as_the_images_user_with_a_writable_tmp(name):
    spec = chart.gateway_deployment(chart.scenario(name))["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 10001
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    config = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/gateway")
    assert config["readOnly"] is True
    assert container["args"] == ["serve", "--config", "/etc/gateway/gateway.yaml"]


@pytest.mark.parametrize("name", NAMES)
def test_probes_startup_and_liveness_on_healthz_readiness_on_readyz(name):
    values = chart.values_of(name)
    (container,) = chart.gateway_deployment(chart.scenario(name))["spec"]["template"]["spec"][
        "containers"
    ]
    port = container["ports"][0]  # a second one, "metrics", when metrics.port is set
    assert port == {
        "name": "http",
        "containerPort": values["config"]["server"]["port"],
        "protocol": "TCP",
    }
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
        assert container[probe]["periodSeconds"] >= 1


@pytest.mark.parametrize("name", NAMES)
def test_termination_outlasts_the_gateways_drain(name):
    values = chart.values_of(name)
    spec = chart.gateway_deployment(chart.scenario(name))["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    drain = values["config"]["server"]["shutdown_timeout"]
    engine = values["config"].get("engine", {})
    grace = engine.get("shutdown_grace_seconds", 5) if engine.get("enabled", True) else 0
    # The gateway exits within shutdown_timeout + the engine's grace + 2 s of SIGTERM.
    assert spec["terminationGracePeriodSeconds"] > sleep + drain + grace + 2


@pytest.mark.parametrize("name", NAMES)
def test_config_checksum_matches_the_rendered_configmap(name):
    docs = chart.scenario(name)
    config = chart.find(docs, "ConfigMap", f"{chart.RELEASE}-gateway")["data"]["gateway.yaml"]
    annotations = chart.gateway_deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    expected = hashlib.sha256(config.rstrip("\n").encode()).hexdigest()
    assert annotations["checksum/config"] == expected


def test_checksum_follows_config_changes_only():
    def checksum(*sets):
        docs = chart.render((), sets)
        return chart.gateway_deployment(docs)["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]

    base = checksum()
    assert checksum("config.max_body_bytes=2048") != base
    assert checksum("service.port=8081") == base


@pytest.mark.parametrize("name", NAMES)
def test_selectors_use_only_the_stable_labels(name):
    docs = chart.scenario(name)
    deployment = chart.gateway_deployment(docs)
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert chart.find(docs, "Service", f"{chart.RELEASE}-gateway")["spec"]["selector"] == SELECTOR
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= pod_labels.items()
    assert pod_labels["helm.sh/chart"].startswith("gateway-")
    for doc in docs:
        for selector in _selectors(doc):
            assert "helm.sh/chart" not in selector, doc["kind"]
            assert "app.kubernetes.io/version" not in selector, doc["kind"]
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] == "Pod" or labels.get("app.kubernetes.io/component") == "redis":
            # The helm test pod and the internal Redis must never match the gateway's selector.
            assert not SELECTOR.items() <= labels.items(), doc["metadata"]["name"]


def _selectors(doc):
    spec = doc.get("spec", {})
    if doc["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget", "ServiceMonitor"):
        yield spec["selector"]["matchLabels"]
    if doc["kind"] == "Service":
        yield spec["selector"]
    if doc["kind"] == "NetworkPolicy":
        yield spec["podSelector"]["matchLabels"]
    for c in spec.get("template", {}).get("spec", {}).get("topologySpreadConstraints", []):
        yield c["labelSelector"]["matchLabels"]


@pytest.mark.parametrize("name", NAMES)
def test_image_is_pinned_never_latest(name):
    for where, spec in chart.pod_specs(chart.scenario(name)):
        for c in spec["containers"]:
            image = c["image"]
            assert "@sha256:" in image or ":" in image.rsplit("/", 1)[-1], where
            assert not image.endswith(":latest"), where
            assert c["imagePullPolicy"] == "IfNotPresent", where


def test_defaults_render_only_the_core_resources():
    assert chart.kinds(chart.scenario("defaults")) == [
        "ConfigMap/gw-gateway",
        "Deployment/gw-gateway",
        "Pod/gw-gateway-test-connection",
        "Secret/gw-gateway",
        "Service/gw-gateway",
        "ServiceAccount/gw-gateway",
    ]
    deployment = chart.gateway_deployment(chart.scenario("defaults"))
    assert deployment["spec"]["replicas"] == 1
    # Resources are the operator's conscious choice: unset by default (STYLE 12).
    assert "resources" not in deployment["spec"]["template"]["spec"]["containers"][0]


def test_production_renders_every_optional_resource():
    assert chart.kinds(chart.scenario("production")) == [
        "ConfigMap/gw-gateway",
        "ConfigMap/gw-gateway-dashboard",
        "Deployment/gw-gateway",
        "HorizontalPodAutoscaler/gw-gateway",
        "Ingress/gw-gateway",
        "NetworkPolicy/gw-gateway",
        "Pod/gw-gateway-test-connection",
        "PodDisruptionBudget/gw-gateway",
        "PrometheusRule/gw-gateway",
        "Secret/gw-gateway",
        "Service/gw-gateway",
        "Service/gw-gateway-metrics",
        "ServiceAccount/gw-gateway",
        "ServiceMonitor/gw-gateway",
    ]


def test_production_sets_requests_and_limits():
    (container,) = chart.gateway_deployment(chart.scenario("production"))["spec"]["template"][
        "spec"
    ]["containers"]
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]


def test_hpa_replaces_the_replica_count():
    docs = chart.scenario("production")
    assert "replicas" not in chart.gateway_deployment(docs)["spec"]
    hpa = chart.find(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gw-gateway",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}


def test_monitoring_resources_need_the_operators_api():
    docs = chart.render((chart.SCENARIOS["production"],), (), api_versions=())
    assert {d["kind"] for d in docs}.isdisjoint({"ServiceMonitor", "PrometheusRule"})


@pytest.mark.parametrize(
    ("sets", "has_pdb"),
    [
        (("podDisruptionBudget.enabled=true",), False),  # one replica: it would block drains
        (("podDisruptionBudget.enabled=true", "replicaCount=2"), True),
        (("replicaCount=2",), False),  # off unless asked for
    ],
)
def test_pdb_only_when_enabled_and_more_than_one_replica(sets, has_pdb):
    docs = chart.render((), sets)
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert bool(pdbs) is has_pdb
    if pdbs:
        assert pdbs[0]["apiVersion"] == "policy/v1"
        assert pdbs[0]["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}


def test_service_monitor_only_when_enabled():
    assert not [d for d in chart.render() if d["kind"] == "ServiceMonitor"]
    assert [
        d
        for d in chart.render((), ("serviceMonitor.enabled=true",))
        if d["kind"] == "ServiceMonitor"
    ]


def test_network_policy_admits_the_listed_peers_and_the_helm_test_pod():
    docs = chart.scenario("production")
    policy = chart.find(docs, "NetworkPolicy", f"{chart.RELEASE}-gateway")
    assert policy["spec"]["podSelector"]["matchLabels"] == SELECTOR
    rule, metrics_rule = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    peers = rule["from"]
    assert len(peers) == 2
    test_pod = chart.find(docs, "Pod")
    selector = peers[-1]["podSelector"]["matchLabels"]
    assert selector.items() <= test_pod["metadata"]["labels"].items()


def test_internal_redis_admits_only_the_gateway():
    docs = chart.scenario("tryout")
    policy = chart.find(docs, "NetworkPolicy", f"{chart.RELEASE}-gateway-redis")
    redis = chart.find(docs, "Deployment", f"{chart.RELEASE}-gateway-redis")
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": SELECTOR}}]
    service = chart.find(docs, "Service", f"{chart.RELEASE}-gateway-redis")
    assert service["spec"]["selector"] == redis["spec"]["selector"]["matchLabels"]


def test_the_grace_period_is_derived_from_the_drain_unless_set():
    derived = chart.gateway_deployment(chart.scenario("defaults", "preStopSleepSeconds=7"))
    spec = derived["spec"]["template"]["spec"]
    # 7 (preStop) + 20 (shutdown_timeout) + 5 (engine grace) + 2, and 5 s of margin.
    assert spec["terminationGracePeriodSeconds"] == 39
    engine_off = chart.gateway_deployment(
        chart.scenario("defaults", "preStopSleepSeconds=7", "config.engine.enabled=false")
    )
    assert engine_off["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 34


def _redis_container(workload):
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def test_the_internal_redis_without_persistence_keeps_nothing_and_says_so():
    """tryout: a Deployment on an emptyDir, no AOF, no snapshot (test_chart_notes: warned)."""
    docs = chart.scenario("tryout")
    redis = chart.find(docs, "Deployment", f"{chart.RELEASE}-gateway-redis")
    args = _redis_container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "no"
    assert args[args.index("--save") + 1] == ""
    (volume,) = redis["spec"]["template"]["spec"]["volumes"]
    assert volume == {"name": "data", "emptyDir": {}}
    assert not [d for d in docs if d["kind"] == "StatefulSet"]


def test_the_internal_redis_with_persistence_keeps_an_append_only_file_on_a_claim():
    docs = chart.scenario("durable-redis")
    name = f"{chart.RELEASE}-gateway-redis"
    assert not [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    redis = chart.find(docs, "StatefulSet", name)
    assert redis["spec"]["serviceName"] == chart.find(docs, "Service", name)["metadata"]["name"]
    args = _redis_container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "always"
    assert args[args.index("--dir") + 1] == "/data"
    mounts = {m["name"]: m["mountPath"] for m in _redis_container(redis)["volumeMounts"]}
    assert mounts == {"data": "/data"}
    # The data is the claim's, not a pod volume's (an emptyDir would shadow it).
    assert "volumes" not in redis["spec"]["template"]["spec"]
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    # The gateway pods use it.
    config = chart.find(docs, "ConfigMap", f"{chart.RELEASE}-gateway")
    assert f"redis://{name}:6379/0" in str(config["data"])


def test_persistence_defaults_to_everysec_and_the_clusters_storage_class():
    docs = chart.scenario("tryout", "redis.internal.persistence.enabled=true")
    redis = chart.find(docs, "StatefulSet", f"{chart.RELEASE}-gateway-redis")
    args = _redis_container(redis)["args"]
    assert args[args.index("--appendfsync") + 1] == "everysec"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert "storageClassName" not in claim["spec"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_production_uses_an_external_redis():
    """The production example runs no Redis of its own: its URL comes from the Secret."""
    docs = chart.scenario("production")
    assert not [
        d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "redis"
    ]
    values = chart.values_of("production")
    assert values["redis"]["urlFromSecret"] is True
    assert values["redis"]["internal"]["enabled"] is False
    env = {
        e["name"]: e
        for e in chart.gateway_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GATEWAY_REDIS__URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"
