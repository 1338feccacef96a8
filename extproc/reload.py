"""Hot reload: watch the policy file, compile a whole new Policy, swap one reference.

Kubernetes updates a mounted ConfigMap by swapping a ``..data`` symlink, so the file is
polled through the symlink (stat follows it) rather than watched by inode. On any error the
last good policy keeps serving; the error is logged and counted.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Callable

from extproc.config import ConfigError, load_policy
from extproc.policy import Policy

log = logging.getLogger(__name__)


class PolicyStore:
    """Holds the serving policy. Readers take ``current`` once per stream and keep it."""

    def __init__(self, policy: Policy, path: Path | None = None) -> None:
        self.current = policy
        self.path = path
        self._signature = _signature(path) if path else None

    def changed(self) -> bool:
        return self.path is not None and _signature(self.path) != self._signature

    def reload(self) -> bool:
        """Load the file again; True when a new policy now serves."""
        assert self.path is not None
        self._signature = _signature(self.path)
        policy = load_policy(self.path)  # raises ConfigError; the caller keeps the old one
        if policy.digest == self.current.digest:
            return False
        self.current = policy  # one reference assignment: atomic for readers
        return True


async def watch(store: PolicyStore, interval: float, on_result: Callable[[str], None]) -> None:
    """Poll until cancelled; compile off the event loop so streams keep flowing."""
    while True:
        await asyncio.sleep(interval)
        if not store.changed():
            continue
        try:
            swapped = await asyncio.to_thread(store.reload)
        except ConfigError as exc:
            log.error("policy reload failed, keeping the last good policy", extra={"problems": exc.problems})
            on_result("error")
            continue
        except Exception:  # never let the watcher die: the next change must still be seen
            log.exception("policy reload crashed, keeping the last good policy")
            on_result("error")
            continue
        if swapped:
            log.info("policy reloaded", extra={"digest": store.current.digest[:12]})
            on_result("ok")
        else:
            on_result("unchanged")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
