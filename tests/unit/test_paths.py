"""The canonical path: every spelling an application server reads as one path gets one form."""
import pytest

from extproc.core.paths import canonical, prefix_matcher


@pytest.mark.parametrize(("raw", "path"), [
    ("/internal/report", "/internal/report"),
    ("/internal;/report", "/internal/report"),  # Tomcat and Spring drop ';' parameters
    ("/internal;jsessionid=1/report;x", "/internal/report"),
    ("/internal%3b/report", "/internal/report"),  # decoded first, then dropped
    ("/internal\\report", "/internal/report"),  # IIS reads '\\' as '/'
    ("//internal//report", "/internal/report"),
    ("/in%74ernal/report", "/internal/report"),
    ("/internal/", "/internal/"),
    ("/", "/"),
    ("", "/"),
])
def test_spellings_that_servers_read_alike_get_one_form(raw, path):
    assert canonical(raw) == (path, "")


@pytest.mark.parametrize(("raw", "folded"), [
    ("/Internal/Report", "/internal/report"),
    ("/INTERNAL;x/report", "/internal/report"),
    ("/\u0131nternal/report", "/internal/report"),  # dotless i: .NET's invariant comparison matches it
    ("/\uff49nternal/report", "/internal/report"),  # fullwidth i
    ("/\u212aey", "/key"),  # Kelvin sign
])
def test_folding_matches_what_case_insensitive_servers_match(raw, folded):
    assert canonical(raw, fold=True).path == folded


@pytest.mark.parametrize(("raw", "problem"), [
    ("/..;/internal/report", "above_root"),
    ("/../etc/passwd", "above_root"),
    ("/api/..;/internal/report", "dot_segment"),  # Envoy routed it as /api/, the app reads /internal/
    ("/api/%2e%2e/internal/report", "dot_segment"),
    ("/api/..\\internal", "dot_segment"),
    ("/api/.;x/report", "dot_segment"),
    ("/internal%252freport", "double_encoded"),  # a server that decodes twice reads a '/'
    ("/internal%255c..%255creport", "double_encoded"),
    ("/x%2500", "double_encoded"),
    ("/internal%00/report", "control_character"),
    ("/internal%0d%0aX: y", "control_character"),
])
def test_a_path_with_no_single_reading_says_why(raw, problem):
    assert canonical(raw).problem == problem


@pytest.mark.parametrize(("raw", "path"), [
    ("/static/..;/internal/report", "/internal/report"),  # '..;' is '..' there
    ("/static/%2e%2e/internal/report", "/internal/report"),
    ("/internal/./report", "/internal/report"),
])
def test_a_disguised_dot_segment_is_still_resolved_for_matching(raw, path):
    assert canonical(raw).path == path


def test_undecodable_bytes_are_kept_not_fatal():
    assert canonical("/caf%E9/men%FC", fold=True).problem == ""


@pytest.mark.parametrize(("prefix", "path", "covered"), [
    ("/internal/", "/internal", True),  # the directory itself
    ("/internal/", "/internal/report", True),
    ("/internal/", "/internalx", False),
    ("/internal", "/internalx", True),  # no slash: a plain prefix, as Envoy reads it
    ("/Internal/", "/internal/a", True),
    ("/", "/anything", True),
])
def test_prefixes(prefix, path, covered):
    assert prefix_matcher(prefix, fold=True)(canonical(path, fold=True).path) is covered


def test_a_case_sensitive_prefix_keeps_case():
    covers = prefix_matcher("/Internal/", fold=False)
    assert covers("/Internal/a") and not covers("/internal/a")
