"""Who may use which MCP server, tool, resource and prompt: per identity group, glob patterns.

A name is allowed for an identity when one of its groups (or ``"*"``, any caller) names the
server and has an allow pattern matching the name and no deny pattern matching it. Access
follows groups, so a new account in a permitted group needs no change here.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from pydantic import Field

from extproc.core.strict import StrictModel

EVERYONE = "*"


class Names(StrictModel):
    allow: list[str] = []  # glob patterns; '*' for all
    deny: list[str] = []


class Grant(StrictModel):
    servers: list[str] = Field(min_length=1)
    tools: Names = Names()
    resources: Names = Names()
    prompts: Names = Names()


@dataclass(frozen=True)
class CompiledGrant:
    servers: frozenset[str]
    allow: dict[str, tuple[str, ...]]
    deny: dict[str, tuple[str, ...]]

    def permits(self, server: str, kind: str, name: str) -> bool:
        if server not in self.servers and EVERYONE not in self.servers:
            return False
        allowed = any(fnmatchcase(name, pattern) for pattern in self.allow[kind])
        return allowed and not any(fnmatchcase(name, pattern) for pattern in self.deny[kind])


def compile_grant(grant: Grant) -> CompiledGrant:
    kinds = {"tool": grant.tools, "resource": grant.resources, "prompt": grant.prompts}
    return CompiledGrant(frozenset(grant.servers), {k: tuple(v.allow) for k, v in kinds.items()},
                         {k: tuple(v.deny) for k, v in kinds.items()})


class Permissions:
    def __init__(self, grants: dict[str, Grant]) -> None:
        self.grants = {group: compile_grant(grant) for group, grant in grants.items()}

    def of(self, groups: frozenset[str]) -> tuple[CompiledGrant, ...]:
        return tuple(grant for group, grant in self.grants.items() if group == EVERYONE or group in groups)

    @staticmethod
    def may_reach(grants: tuple[CompiledGrant, ...], server: str) -> bool:
        return any(server in g.servers or EVERYONE in g.servers for g in grants)

    @staticmethod
    def permits(grants: tuple[CompiledGrant, ...], server: str, kind: str, name: str) -> bool:
        return any(grant.permits(server, kind, name) for grant in grants)
