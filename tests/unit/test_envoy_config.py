"""The shipped Envoy bootstrap and the harness's rendering of it, read as data (tests/e2e/test_e2e_bootstrap.py
runs Envoy with it)."""

from __future__ import annotations

import ssl

import pytest

from extproc.local import envoy as eh
from extproc.local.observed_routes import observe_watched_routes
from extproc.wire.messages import HANDOFF_KEY, HANDOFF_NAMESPACE, REPORT_PATH

ROUTE_NAMES = ["static", "upload", "api", "default"]


def _render(**overrides) -> dict:
    ports = dict(
        listen_port=12000,  # rendering binds nothing: any ports will do
        admin_port=12001,
        extproc_port=12002,
        upstream_port=12003,
        tls_port=12004,
    )
    ports.update(overrides)
    return eh.render_envoy_config(**ports)


def _per_route_extproc(route: dict) -> dict:
    return route.get("typed_per_filter_config", {}).get(eh.EXTPROC_FILTER, {})


def _socket(address: dict) -> tuple[str, int]:
    sock = address["socket_address"]
    return sock["address"], sock["port_value"]


# -- rendering ---------------------------------------------------------------

def test_render_rewrites_addresses_by_structure():
    config = eh.render_envoy_config(
        listen_port=11000, admin_port=11001, extproc_port=11002, upstream_port=11003, tls_port=11004
    )
    assert _socket(config["admin"]["address"]) == ("127.0.0.1", 11001)
    listener = config["static_resources"]["listeners"][0]
    assert _socket(listener["address"]) == ("127.0.0.1", 11000)
    assert _socket(eh.cluster_address(config, "extproc")) == ("127.0.0.1", 11002)
    assert _socket(eh.cluster_address(config, "app")) == ("127.0.0.1", 11003)


def test_shipped_bootstrap_defaults():
    config = eh.load_config()
    listener = config["static_resources"]["listeners"][0]
    assert _socket(listener["address"]) == ("0.0.0.0", 10000)
    assert listener["per_connection_buffer_limit_bytes"] == 1048576
    assert _socket(config["admin"]["address"]) == ("127.0.0.1", 9901)
    assert eh.cluster_address(config, "extproc") == {"pipe": {"path": "/run/extproc/extproc.sock"}}
    assert _socket(eh.cluster_address(config, "app")) == ("127.0.0.1", 8080)


def test_render_keeps_named_routes_and_policy():
    config = _render()
    routes = {route["name"]: route for route in eh.routes(config)}
    assert [route["name"] for route in eh.routes(config)] == ROUTE_NAMES
    assert all(route["route"]["cluster"] == "app" for route in routes.values())
    assert _per_route_extproc(routes["static"])["disabled"] is True
    assert routes["static"]["typed_per_filter_config"][eh.BUFFER_FILTER]["disabled"] is True
    upload_mode = _per_route_extproc(routes["upload"])["overrides"]["processing_mode"]
    assert upload_mode["request_body_mode"] == "BUFFERED"
    assert _per_route_extproc(routes["api"]) == {}
    assert _per_route_extproc(routes["default"]) == {}


def test_render_keeps_extproc_settings():
    ext = eh.extproc_filter(_render())
    assert ext["grpc_service"]["envoy_grpc"]["cluster_name"] == "extproc"
    assert ext["failure_mode_allow"] is False
    assert ext["allow_mode_override"] is True
    assert ext["message_timeout"] == "0.25s"
    assert ext["processing_mode"]["request_body_mode"] == "NONE"
    assert "xds.route_name" in ext["request_attributes"]
    assert "mutation_rules" not in ext


def test_extproc_filter_runs_after_the_buffer_filter_and_before_router():
    names = [f["name"] for f in eh.http_connection_manager(_render())["http_filters"]]
    # Answers pass filters in reverse: the answer reader sees the upstream's answer first.
    assert names == [eh.BUFFER_FILTER, eh.EXTPROC_FILTER, eh.READER_FILTER, "envoy.filters.http.router"]


# -- answers read, never held (issue 22) -------------------------------------------------------


def reader_script(config: dict) -> str:
    (entry,) = [f for f in eh.http_connection_manager(config)["http_filters"] if f["name"] == eh.READER_FILTER]
    assert entry["disabled"] is True  # only on the routes that name its script
    return entry["typed_config"]["source_codes"][eh.READER_SCRIPT]["inline_string"]


def test_the_answer_reader_speaks_the_sidecars_names():
    config = eh.load_config()
    script = reader_script(config)
    # What the decision hands over is what the script reads back, and it reports where the sidecar listens.
    handed = eh.extproc_filter(config)["metadata_options"]["receiving_namespaces"]["untyped"]
    assert handed == [HANDOFF_NAMESPACE]
    assert f'dynamicMetadata():get("{HANDOFF_NAMESPACE}")' in script and f'handed["{HANDOFF_KEY}"]' in script
    assert f'[":path"] = "{REPORT_PATH}"' in script and f'httpCall("{eh.ANSWERS_CLUSTER}"' in script
    assert '["asynchronous"] = true' in script  # fire and forget: the answer never waits for it
    assert eh.cluster_address(config, eh.ANSWERS_CLUSTER) == eh.cluster_address(config, eh.EXTPROC_CLUSTER)


def test_both_sidecar_clusters_follow_the_harness_to_the_sidecar(tmp_path):
    config = _render()
    assert _socket(eh.cluster_address(config, eh.ANSWERS_CLUSTER)) == ("127.0.0.1", 12002)
    eh.use_extproc_unix_socket(config, tmp_path / "s.sock")
    assert eh.cluster_address(config, eh.ANSWERS_CLUSTER) == {"pipe": {"path": str(tmp_path / "s.sock")}}
    eh.use_extproc_mtls(config, tmp_path / "c.crt", tmp_path / "c.key", tmp_path / "ca.crt")
    sockets = [eh.find_cluster(config, name)["transport_socket"] for name in eh.SIDECAR_CLUSTERS]
    assert sockets[0] == sockets[1] and sockets[0]["typed_config"]["sni"] == eh.EXTPROC_SERVER_NAME


def test_observing_a_route_enables_the_reader_and_tells_the_sidecar():
    config = _render()
    eh.observe_answers(config, "upload")
    upload = eh.find_route(config, "upload")
    assert eh.answers_observed(upload) and not eh.answers_observed(eh.find_route(config, "api"))
    overrides = _per_route_extproc(upload)["overrides"]
    assert overrides["processing_mode"]["request_body_mode"] == "BUFFERED"  # kept
    assert overrides["grpc_initial_metadata"] == [{"key": "x-extproc-answers", "value": "observed"}]
    with pytest.raises(ValueError):
        eh.observe_answers(config, "static")  # no sidecar there


WATCHING_POLICY = """
version: 1
routes:
  - name: llm
    match: {path_prefix: /v1/}
    layers: {ai_gateway: {groups: {"*": {}}}}
  - name: api
    match: {path_prefix: /api/}
    layers: {ai_gateway: {groups: {"*": {}}}}
  - name: agents
    match: {path_prefix: /agents/, case_sensitive: true}
    layers:
      ai_gateway: {groups: {"*": {}}}
      mcp: {server: tools, groups: {"*": {servers: [tools], tools: {allow: ["*"]}}}, audit: null, scan_arguments: false}
  - name: partner
    match: {hosts: [llm.partner.example]}
    layers: {ai_gateway: {groups: {"*": {}}}}
  - name: plain
    match: {path_prefix: /plain/}
"""


def test_policy_routes_that_only_watch_answers_get_observed_envoy_routes(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(WATCHING_POLICY)
    config = _render()
    observed = observe_watched_routes(config, policy)
    assert observed.routes == ("llm", "api") and observed.left == ("partner",)  # agents: mcp rewrites answers
    assert [route["name"] for route in eh.routes(config)] == ["static", "llm", *ROUTE_NAMES[1:]]
    llm = eh.find_route(config, "llm")
    assert llm["match"] == {"prefix": "/v1/", "case_sensitive": False}
    assert llm["route"] == {"cluster": "app", "timeout": "0s"}  # an answer streams for minutes
    assert eh.answers_observed(llm) and eh.answers_observed(eh.find_route(config, "api"))
    assert not eh.answers_observed(eh.find_route(config, "default"))


def test_a_policy_without_watching_layers_leaves_the_routes_alone(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nroutes: [{name: plain, match: {path_prefix: /plain/}}]\n")
    config = _render()
    assert observe_watched_routes(config, policy).routes == ()
    assert config == _render()


# -- slow clients (issue 18) ---------------------------------------------------------------------


def test_buffer_filter_holds_at_most_the_listener_buffer():
    # A larger limit would be cut short by the connection's own buffer; a smaller one would refuse
    # bodies the sidecar is meant to inspect.
    config = eh.load_config()
    limit = eh.find_listener(config, eh.PLAIN_LISTENER)["per_connection_buffer_limit_bytes"]
    assert eh.http_filter(config, eh.BUFFER_FILTER)["max_request_bytes"] == limit


def test_slow_clients_are_timed_out():
    manager = eh.http_connection_manager(eh.load_config())
    assert manager["request_headers_timeout"] == "10s"
    assert manager["request_timeout"] == "30s"
    assert "stream_idle_timeout" not in manager  # Envoy's 5 minutes: responses may pause longer than a body
    assert manager["http2_protocol_options"] == {"max_concurrent_streams": 100}


def test_extproc_cluster_circuit_breakers_match_one_stream_per_connection():
    cluster = eh.find_cluster(eh.load_config(), eh.EXTPROC_CLUSTER)
    (threshold,) = cluster["circuit_breakers"]["thresholds"]
    assert threshold == {"priority": "DEFAULT", "max_connections": 1024, "max_requests": 1024,
                         "max_pending_requests": 1024, "track_remaining": True}
    http2 = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert http2["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"] == 1


# -- request spellings (issue 18) -----------------------------------------------------------------


def test_headers_with_underscores_are_refused():
    manager = eh.http_connection_manager(eh.load_config())
    assert manager["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"


PLAIN_ASSET_PATHS = ["/static/app.css", "/static/img/logo.png", "/static/js/app-1.2_min.js", "/static/a..b/c"]
OTHER_SPELLINGS = [
    "/static/..;/internal/report", "/static/.;/x.css", "/static/a;b/x.css", "/static/x.css;.js",
    "/static/%2e%2e/x", "/static/..%5cinternal", "/static/a\\b.css", "/static/.git/config", "/static/.x",
    "/static/PROGRA~1/x.css", "/static/x y.css", "/static/x:y.css", "/STATIC/x.css", "/Static/x.css",
    "/static/", "/static", "/static/a/", "/static//a.css", "/staticx/a.css", "/x/static/a.css",
]


def _sidecar_skipping_routes(config: dict) -> list[dict]:
    return [route for route in eh.routes(config) if _per_route_extproc(route).get("disabled")]


def test_routes_that_skip_the_sidecar_match_only_plain_paths():
    import re2

    skipping = _sidecar_skipping_routes(eh.load_config())
    assert [route["name"] for route in skipping] == ["static"]
    for route in skipping:
        # A regex over the whole path only: a prefix would also take '/static/..;/internal'.
        assert set(route["match"]) == {"safe_regex"}, route["match"]
        pattern = re2.compile(route["match"]["safe_regex"]["regex"])
        assert [path for path in PLAIN_ASSET_PATHS if not pattern.fullmatch(path)] == []
        assert [path for path in OTHER_SPELLINGS if pattern.fullmatch(path)] == []


def test_named_prefix_routes_match_in_any_case():
    routes = {route["name"]: route["match"] for route in eh.routes(eh.load_config())}
    assert routes["api"] == {"prefix": "/api/", "case_sensitive": False}
    assert routes["upload"] == {"prefix": "/upload", "case_sensitive": False}
    assert routes["default"] == {"prefix": "/"}


def test_render_overrides_message_timeout_only_when_asked():
    assert eh.extproc_filter(_render(message_timeout=1.5))["message_timeout"] == "1.500000s"
    assert eh.extproc_filter(_render(message_timeout="2s"))["message_timeout"] == "2s"
    # The template on disk is not touched by rendering.
    assert eh.extproc_filter(eh.load_config())["message_timeout"] == "0.25s"


def test_static_route_strips_every_header_the_sidecar_owns():
    # ext_proc is disabled on `static`, so Envoy itself must drop client copies of our headers.
    from extproc.layers import OWNED_HEADERS

    static = next(r for r in eh.routes(eh.load_config()) if r["name"] == "static")
    assert set(static["request_headers_to_remove"]) == set(OWNED_HEADERS)


# -- TLS listener and fingerprints ---------------------------------------------

def _tls_inspector(config: dict) -> dict:
    (listener_filter,) = eh.find_listener(config, eh.TLS_LISTENER)["listener_filters"]
    assert listener_filter["name"] == "envoy.filters.listener.tls_inspector"
    return listener_filter["typed_config"]


def test_both_listeners_share_one_connection_manager():
    config = eh.load_config()
    plain, tls = (eh.find_listener(config, name) for name in (eh.PLAIN_LISTENER, eh.TLS_LISTENER))
    assert tls["filter_chains"][0]["filters"][0] is plain["filter_chains"][0]["filters"][0]  # a YAML alias
    assert tls["per_connection_buffer_limit_bytes"] == plain["per_connection_buffer_limit_bytes"]


def test_shipped_tls_listener():
    config = eh.load_config()
    assert _socket(eh.find_listener(config, eh.TLS_LISTENER)["address"]) == ("0.0.0.0", 10443)
    assert _tls_inspector(config) == {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        "enable_ja3_fingerprinting": True,
        "enable_ja4_fingerprinting": True,
    }
    (context,) = eh.tls_contexts(config)
    assert context["common_tls_context"]["alpn_protocols"] == ["h2", "http/1.1"]


def test_fingerprint_headers_replace_client_copies_before_any_filter():
    (extension,) = eh.http_connection_manager(eh.load_config())["early_header_mutation_extensions"]
    mutations = extension["typed_config"]["mutations"]
    assert mutations[:2] == [{"remove": "x-ja3"}, {"remove": "x-ja4"}]
    assert [m["append"]["header"] for m in mutations[2:]] == [
        {"key": "x-ja3", "value": "%TLS_JA3_FINGERPRINT%"},
        {"key": "x-ja4", "value": "%TLS_JA4_FINGERPRINT%"},
    ]
    # Unset keep_empty_value: no fingerprint means no header, not an empty one.
    assert not any(m["append"].get("keep_empty_value") for m in mutations[2:])


def test_render_moves_the_tls_listener_and_the_harness_sets_its_certificate(tmp_path):
    config = _render(tls_port=11004)
    assert _socket(eh.find_listener(config, eh.TLS_LISTENER)["address"]) == ("127.0.0.1", 11004)
    cert, key = eh.write_self_signed_cert(tmp_path)
    eh.use_certificate(config, cert, key)
    (context,) = eh.tls_contexts(config)
    assert context["common_tls_context"]["tls_certificates"] == [
        {"certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}
    ]


def test_shipped_tls_listener_asks_for_client_certificates_without_requiring_them():
    (context,) = eh.tls_contexts(eh.load_config())
    assert context["require_client_certificate"] is False
    # Only the CA: ACCEPT_UNTRUSTED would make connection.mtls true for any certificate.
    assert context["common_tls_context"]["validation_context"] == {
        "trusted_ca": {"filename": "/etc/envoy/tls/client-ca.crt"},
    }


def test_client_sent_xfcc_is_always_dropped():
    assert eh.http_connection_manager(eh.load_config())["forward_client_cert_details"] == "SANITIZE"


def test_harness_points_the_client_ca_at_its_own(tmp_path):
    config = _render()
    ca = eh.write_client_ca(tmp_path)
    eh.use_client_ca(config, ca.cert_path)
    (context,) = eh.tls_contexts(config)
    assert context["common_tls_context"]["validation_context"]["trusted_ca"] == {"filename": str(ca.cert_path)}


def test_client_ca_issues_certificates_with_the_given_sans(tmp_path):
    from cryptography import x509

    ca = eh.write_client_ca(tmp_path)
    cert_path, key_path = ca.issue(tmp_path, "billing", uris=("spiffe://mesh.example/ns/billing/sa/api",),
                                   dns_names=("api.billing.svc",))
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://mesh.example/ns/billing/sa/api"]
    assert sans.get_values_for_type(x509.DNSName) == ["api.billing.svc"]
    cert.verify_directly_issued_by(ca.cert)
    assert key_path.stat().st_mode & 0o077 == 0
    ssl.create_default_context().load_cert_chain(cert_path, key_path)  # a pair ssl accepts
