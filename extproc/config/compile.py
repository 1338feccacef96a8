"""Load, validate and compile the YAML policy document.

Errors name the YAML path of the offending value, e.g.
``routes[3].layers.rules.rules[0].match: unknown key 'hedaers'``.
"""
from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Any, Iterable

import yaml
from pydantic import ValidationError

from extproc.access.directory import Directory, compile_directory
from extproc.config.inherit import merge_section
from extproc.config.schema import PolicyDocument, RouteMatch
from extproc.layers import REGISTRY, LayerSettings
from extproc.layers.base import RouteContext
from extproc.config.matchers import host_matcher
from extproc.rules.signatures import compile_regex
from extproc.core.paths import prefix_matcher
from extproc.core.policy import LayerSlot, Policy, RoutePolicy
from extproc.core.request import InspectionLimits, Request
from extproc.core.text import library_text
from extproc.core.verdict import Mode

class ConfigError(Exception):
    """The policy cannot be used; ``problems`` lists each error with its YAML path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def __str__(self) -> str:
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)


# -- entry points ---------------------------------------------------------------------------


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_policy(text, str(path))


def load_policy_or_report(path: str | Path) -> Policy | None:
    """For commands: the policy, or None after printing its errors (with their YAML paths)."""
    try:
        return load_policy(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def parse_policy(text: bytes | str, source: str = "<policy>") -> Policy:
    raw = text.encode() if isinstance(text, str) else text
    data = _parse_yaml(raw, source)
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _describe(exc, "")) from None
    return _compile(document, source, hashlib.sha256(raw).hexdigest())


# -- YAML -----------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that rejects duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _parse_yaml(raw: bytes, source: str) -> Any:
    try:
        data = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"invalid YAML: {where}{problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["the policy must be a YAML mapping with 'version: 1'"])
    return data


# -- errors ---------------------------------------------------------------------------------


def _describe(exc: ValidationError, prefix: str, origins: dict[tuple[str, int], str] | None = None) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = prefix
        entry = (loc[0], loc[1]) if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int) else None
        if origins and entry in origins:  # an entry of a merged list
            where, loc = origins[entry], loc[2:]
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{loc.pop()}'"
        elif error["type"] == "missing":
            message = f"missing required key '{loc.pop()}'"
        else:
            message = error["msg"].removeprefix("Value error, ")
        path = _join_path(where, loc)
        problems.append(f"{path}: {message}" if path else message)
    return problems


def _join_path(prefix: str, loc: Iterable[Any]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


# -- compile --------------------------------------------------------------------------------


def _compile(document: PolicyDocument, source: str, digest: str) -> Policy:
    problems: list[str] = []
    directory = _directory(document, problems)
    # An access block that failed to build has its problems listed already; the access layers
    # that rely on it are not built, or each would add "needs the top-level 'access' block",
    # which is untrue and hides the real error.
    unbuilt = {"access"} if document.access is not None and directory is None else set()
    base_sections = _validate_layers(document.defaults.layers, {}, "defaults.layers", problems, skip=unbuilt)
    # A defaults section that failed is reported once, not again for every route inheriting it.
    broken = unbuilt | {name for name, section in document.defaults.layers.items()
                        if section and name not in base_sections}
    base_limits = document.defaults.inspection.apply(InspectionLimits())
    base_mode = Mode(document.defaults.mode)
    policy_dir = str(Path(source).parent) if Path(source).is_file() else "."

    default_route = _route_policy(
        "default", lambda _request: True, base_mode, base_limits, document.defaults.deadline_ms, base_sections,
        RouteContext("default", access=directory, policy_dir=policy_dir), problems,
    )
    routes = []
    seen = {"default"}
    for index, route in enumerate(document.routes):
        if route.name in seen:
            problems.append(f"routes[{index}].name: {route.name!r} is already used (or is the reserved 'default')")
        seen.add(route.name)
        sections = _validate_layers(
            route.layers, document.defaults.layers, f"routes[{index}].layers", problems, skip=broken
        )
        routes.append(
            _route_policy(
                route.name,
                _route_matcher(route.match),
                Mode(route.mode) if route.mode else base_mode,
                route.inspection.apply(base_limits),
                route.deadline_ms or document.defaults.deadline_ms,
                sections,
                RouteContext(route.name, route.public, directory, policy_dir),
                problems,
                f"routes[{index}].layers",
            )
        )
    if problems:
        raise ConfigError(source, problems)
    public = tuple(route.name for route in document.routes if route.public)
    return Policy(routes=tuple(routes), default=default_route, digest=digest, source=source,
                  public_routes=public, access=directory,
                  credential_headers=(directory.service_token_headers[1],) if directory is not None else ())


def _directory(document: PolicyDocument, problems: list[str]) -> Directory | None:
    if document.access is None:
        return None
    return compile_directory(document.access, {route.name for route in document.routes}, problems)


def _validate_layers(
    overrides: dict[str, dict | None],
    base: dict[str, dict | None],
    path: str,
    problems: list[str],
    skip: AbstractSet[str] = frozenset(),
) -> dict[str, Section]:
    """Merge a route's layer sections over the defaults' (extproc/config/inherit.py) and validate each
    with its layer's model."""
    for name in overrides:
        if name not in REGISTRY:
            problems.append(f"{path}: unknown layer '{name}' (known: {', '.join(REGISTRY)})")
    sections: dict[str, Section] = {}
    for name, spec in REGISTRY.items():
        if name in skip or (name in overrides and overrides[name] is None):
            continue  # `rules: null` turns the layer off on this route
        if name not in overrides and base.get(name) is None:
            continue
        merged = merge_section(base.get(name) or {}, overrides.get(name) or {}, spec.settings.inherit,
                               f"defaults.layers.{name}", f"{path}.{name}")
        problems.extend(merged.problems)
        try:
            settings = spec.settings.model_validate(merged.section)
        except ValidationError as exc:
            problems.extend(_describe(exc, f"{path}.{name}", merged.origins))
            continue
        if not merged.problems:
            changes = tuple(merged.changes) if base.get(name) is not None else ()
            sections[name] = Section(settings, merged.origins, changes)
    return sections


@dataclass(frozen=True)
class Section:
    """A layer's validated settings on one route, and where its merged list entries came from."""

    settings: LayerSettings
    origins: dict[tuple[str, int], str]  # (key, merged index) -> YAML path of the entry
    changes: tuple[str, ...]  # what the route changed in the inherited section (check-config)


def _route_policy(
    name: str,
    matches,
    mode: Mode,
    limits: InspectionLimits,
    deadline_ms: float | None,
    sections: dict[str, Section],
    context: RouteContext,
    problems: list[str],
    path: str = "defaults.layers",
) -> RoutePolicy:
    slots = []
    for layer_name, section in sections.items():
        settings = section.settings
        layer_mode = _layer_mode(mode, settings.mode)
        if layer_mode is Mode.OFF:
            continue
        spec = REGISTRY[layer_name]
        try:
            layer = spec.build(settings, context)
        except Exception as exc:  # noqa: BLE001 - a model or key file that fails to load is a config error
            problems.append(_build_problem(f"{path}.{layer_name}", str(exc), section.origins))
            continue
        slots.append(
            LayerSlot(
                layer=layer,
                mode=layer_mode,
                fail_closed=settings.on_error == "closed",
                budget_ns=int(settings.budget_ms * 1e6),
                error_status=settings.error_status,
            )
        )
    deadline_ns = int(deadline_ms * 1e6) if deadline_ms else 0  # 0: each phase gets its layers' budgets
    return RoutePolicy(
        name=name,
        matches=matches,
        mode=mode,
        limits=limits,
        slots=tuple(slots),
        deadline_ns=deadline_ns,
        inherited_changes=tuple((name, change) for name, section in sections.items() for change in section.changes),
        **RoutePolicy.traits(tuple(slots)),
    )


LIST_ENTRY = re.compile(r"^(\w+)\[(\d+)\]")


def _build_problem(path: str, message: str, origins: dict[tuple[str, int], str]) -> str:
    """A layer's build error; one about an entry of a merged list names where that entry is written."""
    entry = LIST_ENTRY.match(message)
    origin = origins.get((entry.group(1), int(entry.group(2)))) if entry else None
    return f"{origin}{message[entry.end():]}" if entry and origin else f"{path}: {message}"


def _layer_mode(route_mode: Mode, layer_mode: str | None) -> Mode:
    """A route in observe or off mode wins over its layers; otherwise a layer may relax itself."""
    if route_mode is not Mode.ENFORCE or layer_mode is None:
        return route_mode
    return Mode(layer_mode)


def _route_matcher(match: RouteMatch):
    checks = []
    if match.route_name is not None:
        route_name = match.route_name
        checks.append(lambda r: r.route_name == route_name)
    if match.hosts is not None:
        host = host_matcher(match.hosts)
        checks.append(lambda r: host(r.host))
    fold = not match.case_sensitive
    if match.path_prefix is not None:
        covers = prefix_matcher(match.path_prefix, fold)
        if fold:
            checks.append(lambda r: covers(r.folded_path))
        else:
            checks.append(lambda r: covers(r.canonical_path))
    if match.path_regex is not None:
        pattern = compile_regex(match.path_regex, ignore_case=fold)
        if fold:
            checks.append(lambda r: pattern.search(library_text(r.folded_path)) is not None)
        else:
            checks.append(lambda r: pattern.search(library_text(r.canonical_path)) is not None)
    if match.methods is not None:
        methods = frozenset(m.upper() for m in match.methods)
        checks.append(lambda r: r.method in methods)
    checks_tuple = tuple(checks)

    def matches(request: Request) -> bool:
        return all(check(request) for check in checks_tuple)

    return matches
