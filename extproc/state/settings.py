"""The ``state:`` section a stateful layer accepts: where its counters live and what a slow or
unreachable store means for the request."""
from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from extproc.core.strict import StrictModel

SCHEMES = ("redis", "rediss", "unix")  # rediss: TLS to the store


class StateSettings(StrictModel):
    backend: Literal["memory", "redis"] = "memory"
    # redis://[:password@]host:port/db, rediss:// for TLS; better url_env, the name of an
    # environment variable filled from a Kubernetes Secret, so no password sits in the policy.
    url: str | None = None
    url_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # rediss:// only: the CA that signed the store's certificate (a mounted Secret); default: the system's.
    tls_ca_file: str | None = None
    # The longest one round trip to the store may take, connecting included; past it the store
    # counts as failed and on_error decides. The event loop is never held longer than this.
    timeout_ms: float = Field(default=10.0, gt=0, le=1_000)
    # open: the shared check is skipped (allowed); closed: the request is refused (the layer's
    # error_status); local: this worker's own memory decides, as with backend: memory.
    on_error: Literal["open", "closed", "local"] = "local"
    # After a failure the store is not asked again for this long (a background probe reconnects):
    # a down store costs one timeout per worker and interval, not one per request.
    retry_s: float = Field(default=1.0, ge=0.05, le=60)
    key_prefix: str = Field(default="extproc", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    @model_validator(mode="after")
    def _where(self) -> "StateSettings":
        given = (self.url is not None) + (self.url_env is not None)
        if self.backend == "memory" and given:
            raise ValueError("url and url_env are for backend: redis (backend is memory)")
        if self.backend == "redis":
            if given != 1:
                raise ValueError("backend: redis needs exactly one of 'url' or 'url_env'")
            if self.url is not None:
                check_url(self.url)
        if self.tls_ca_file is not None and self.url is not None and not self.url.startswith("rediss://"):
            raise ValueError("tls_ca_file is for a rediss:// (TLS) url")
        return self

    def resolved_url(self) -> str:
        """The store's URL; ValueError when url_env names a variable that is not set or not a URL."""
        if self.url is not None:
            return self.url
        assert self.url_env is not None  # the validator wants one of them for redis
        value = os.environ.get(self.url_env, "").strip()
        if not value:
            raise ValueError(f"state.url_env: the environment variable {self.url_env} is not set")
        check_url(value, f"the URL in {self.url_env}")
        return value


def check_url(url: str, what: str = "state.url") -> None:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{what} must start with redis://, rediss:// (TLS) or unix://")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{what} names no host")
