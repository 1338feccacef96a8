"""Signed rule bundles: threat-intel rules that replace the current ones without a restart.

A bundle is a YAML document (rules, lists, signatures, plus ``bundle`` and ``version``) and a
detached Ed25519 signature over its exact bytes (``<file>.sig``, base64). It is verified against
the configured public keys before it is parsed; a bundle that is unsigned, signed by another key,
tampered with or invalid is rejected, logged and counted, and the last good one stays.

Sources: a mounted directory (a ConfigMap) of ``*.bundle.yaml`` files, re-read when they change,
and optionally an https URL polled on an interval (its signature at the same URL plus ``.sig``).
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
import urllib.request
import weakref
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, ValidationError, field_validator

from extproc.rules.model import RuleDocument
from extproc.rules.ruleset import RuleSet
from extproc.core.strict import StrictModel

log = logging.getLogger(__name__)
MAX_BUNDLE_BYTES = 16 << 20


class BundleError(ValueError):
    """Why a bundle was rejected (names the bundle)."""


class BundleDocument(RuleDocument):
    bundle: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    version: str = ""


class FeedSettings(StrictModel):
    keys: list[str] = Field(min_length=1)  # Ed25519 public keys: base64 of the raw 32 bytes, or PEM
    dir: str | None = None  # *.bundle.yaml + *.bundle.yaml.sig
    url: str | None = None  # https; the signature at url + ".sig"
    poll_s: float = Field(default=60.0, ge=1, le=86_400)

    @field_validator("url")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith("https://"):
            raise ValueError(f"feed url {url!r} must be https")
        return url


def public_keys(texts: list[str]) -> list[Ed25519PublicKey]:
    keys = []
    for text in texts:
        try:
            if "BEGIN PUBLIC KEY" in text:
                key = serialization.load_pem_public_key(text.encode())
            else:
                key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not an Ed25519 public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("bundle keys must be Ed25519")
        keys.append(key)
    return keys


def verify(data: bytes, signature: bytes, keys: list[Ed25519PublicKey], name: str) -> None:
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        raise BundleError(f"{name}: signature is not base64") from None
    for key in keys:
        try:
            key.verify(raw, data)
            return
        except InvalidSignature:
            continue
    raise BundleError(f"{name}: signature does not verify with any configured key")


def sign(data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    return base64.b64encode(private_key.sign(data)) + b"\n"


def write_key_pair(out: Path, stem: str) -> tuple[Path, Path]:
    """A new Ed25519 pair: OUT/STEM.key (PEM, mode 0600, the secret) and OUT/STEM.pub (base64)."""
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    secret, public = out / f"{stem}.key", out / f"{stem}.pub"
    descriptor = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public.write_text(base64.b64encode(raw).decode() + "\n")
    return secret, public


def sign_file(data_path: Path, key_path: Path) -> bytes:
    """The detached signature of a file with a PEM Ed25519 key; ValueError says what is wrong."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        data = data_path.read_bytes()
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot sign: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{key_path}: not an Ed25519 private key")
    return sign(data, key)


@dataclass(frozen=True)
class LoadedBundle:
    name: str
    version: str
    rules: RuleSet
    digest: str


def load_bundle(data: bytes, signature: bytes | None, keys: list[Ed25519PublicKey], name: str,
                base_dir: Path) -> LoadedBundle:
    if signature is None:
        raise BundleError(f"{name}: unsigned (no .sig)")
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{name}: larger than {MAX_BUNDLE_BYTES} bytes")
    verify(data, signature, keys, name)
    return parse_bundle(data, name, base_dir)


def parse_bundle(data: bytes, name: str, base_dir: Path) -> LoadedBundle:
    """The rules of a bundle whose signature has been checked (or, for `rules test`, need not be)."""
    try:
        document = BundleDocument.model_validate(yaml.safe_load(data))
        rules = RuleSet(document, base_dir, f"{name}: ")
    except (yaml.YAMLError, ValidationError, ValueError, TypeError) as exc:
        raise BundleError(f"{name}: {_first_line(exc)}") from None
    return LoadedBundle(document.bundle, document.version, rules, hashlib.sha256(data).hexdigest()[:12])


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    return str(exc).splitlines()[0]


class Feed:
    """The current bundles of one feed; refreshed in a background thread, swapped whole."""

    def __init__(self, settings: FeedSettings, base_dir: Path, on_event=None) -> None:
        self.settings = settings
        self.keys = public_keys(settings.keys)
        self.dir = None if settings.dir is None else (Path(settings.dir) if Path(settings.dir).is_absolute()
                                                      else base_dir / settings.dir)
        self.on_event = on_event or (lambda event, name, detail: None)
        self.bundles: dict[str, LoadedBundle] = {}  # source name -> last good; replaced whole
        self._stamps: dict[str, tuple] = {}
        self.refresh()
        interval = min(settings.poll_s, 5.0) if self.dir is not None else settings.poll_s
        # The poller holds the feed weakly: once no policy uses the feed, the thread ends.
        threading.Thread(target=_poll, args=(weakref.ref(self), interval), name="rule-feed", daemon=True).start()

    @property
    def rulesets(self) -> tuple[RuleSet, ...]:
        return tuple(bundle.rules for _, bundle in sorted(self.bundles.items()))

    def refresh(self) -> None:
        bundles = dict(self.bundles)
        if self.dir is not None:
            for path in sorted(self.dir.glob("*.bundle.yaml")):
                try:
                    stamp = _stamp(path)
                except OSError:  # removed since the listing; the next poll sees the directory as it is
                    continue
                self._consider(bundles, path.name, lambda p=path: _read_pair(p), stamp)
        if self.settings.url:
            self._consider(bundles, self.settings.url, self._fetch, None)
        self.bundles = bundles

    def _consider(self, bundles: dict, name: str, read, stamp) -> None:
        if stamp is not None and self._stamps.get(name) == stamp:
            return
        try:
            data, signature = read()
            loaded = load_bundle(data, signature, self.keys, name, self.dir or Path("."))
        except (BundleError, OSError) as exc:
            log.error("rule bundle rejected, keeping the last good one: %s", exc)
            self.on_event("rejected", name, str(exc))
        else:
            if name not in bundles or bundles[name].digest != loaded.digest:
                bundles[name] = loaded
                log.info("rule bundle %s version %s active (%d rules)", loaded.name, loaded.version,
                         len(loaded.rules.rules))
                self.on_event("loaded", name, loaded.version)
        self._stamps[name] = stamp

    def _fetch(self) -> tuple[bytes, bytes]:
        url = self.settings.url
        assert url is not None  # fetched only for a feed with a URL
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - https only (validated)
            data = response.read(MAX_BUNDLE_BYTES + 1)
        with urllib.request.urlopen(url + ".sig", timeout=10) as response:  # noqa: S310
            signature = response.read(4096)
        return data, signature


def _poll(feed_ref: weakref.ref, interval: float) -> None:
    while True:
        time.sleep(interval)
        feed = feed_ref()
        if feed is None:
            return
        try:
            feed.refresh()
        except Exception:  # noqa: BLE001 - the poller outlives a surprise; the last good bundles stay
            log.exception("rule feed refresh failed")
        del feed  # not held while asleep


def _read_pair(path: Path) -> tuple[bytes, bytes | None]:
    signature = path.with_name(path.name + ".sig")
    return path.read_bytes(), signature.read_bytes() if signature.exists() else None


def _stamp(path: Path) -> tuple:
    signature = path.with_name(path.name + ".sig")
    stats = [p.stat() for p in (path, signature) if p.exists()]
    return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)
