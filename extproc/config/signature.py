"""Signed policies: a detached Ed25519 signature (``<policy>.sig``) checked before a policy serves.

Without a key the policy is read as before. With one (``serve --policy-public-key FILE``), a
policy whose signature is missing or does not verify with any of the keys is refused at start and
on every reload (the last good policy keeps serving). The signing code is the rule bundles'
(extproc/rules/bundle.py): the signature covers the exact bytes of the file.

The policy and its signature are read as one snapshot: both from the directory the policy path
resolves to at that moment. A kubelet-mounted ConfigMap swaps its ``..data`` symlink to a new
directory holding every key, so one resolution sees one generation of both files; a pair read
while a plain file changes is re-read once it settles (extproc/config/store.py).

    extproc policy keygen --out keys/                 # policy.key (secret) and policy.pub
    extproc policy sign policy.yaml --key keys/policy.key   # writes policy.yaml.sig
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from extproc.config.compile import ConfigError
from extproc.rules.bundle import BundleError, public_keys, sign_file, verify, write_key_pair

MAX_SIGNATURE_BYTES = 4096  # base64 of 64 bytes is 88: anything near this is not a signature
KEYS_ENV = "EXTPROC_POLICY_PUBLIC_KEY"  # comma-separated files, for manifests


def signature_path(policy: Path) -> Path:
    return policy.with_name(policy.name + ".sig")


@dataclass(frozen=True)
class PolicyKeys:
    """The public keys a policy's signature must verify with (any one of them: key rotation)."""

    keys: tuple[Ed25519PublicKey, ...]
    files: tuple[str, ...]

    @classmethod
    def from_files(cls, files: list[str]) -> "PolicyKeys":
        """Each file holds one key or more: PEM blocks, or base64 of the raw 32 bytes, one a line."""
        keys: list[Ed25519PublicKey] = []
        for file in files:
            try:
                text = Path(file).read_text(encoding="ascii")
                keys += public_keys(_key_texts(text))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ConfigError(file, [f"policy public key: {exc}"]) from None
            if not keys:
                raise ConfigError(file, ["policy public key: the file holds no key"])
        return cls(tuple(keys), tuple(files))

    def read(self, policy: Path) -> tuple[bytes, tuple[Path, ...]]:
        """The policy's bytes once its signature verifies, and the two files read. Raises
        ConfigError (unsigned, signed by another key, tampered with) or OSError."""
        data, signature = read_pair(policy)
        if signature is None:
            raise ConfigError(str(policy), [f"unsigned: no {signature_path(policy).name} beside it"])
        try:
            verify(data, signature, list(self.keys), policy.name)
        except BundleError as exc:
            raise ConfigError(str(policy), [f"signature: {exc}"]) from None
        return data, (policy, signature_path(policy))


def read_pair(policy: Path) -> tuple[bytes, bytes | None]:
    """The policy and its signature from one resolution of the policy's path (one generation of a
    ConfigMap volume). The signature is None when there is none; an oversized one is refused."""
    real = Path(os.path.realpath(policy))
    data = real.read_bytes()
    try:
        with open(signature_path(real), "rb") as handle:
            signature = handle.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        return data, None
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise ConfigError(str(policy), [f"signature: larger than {MAX_SIGNATURE_BYTES} bytes"])
    return data, signature


def _key_texts(text: str) -> list[str]:
    if "BEGIN PUBLIC KEY" in text:
        end = "-----END PUBLIC KEY-----"
        return [block + end for block in text.split(end) if "BEGIN PUBLIC KEY" in block]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def key_files(given: list[str] | None) -> list[str]:
    """--policy-public-key values, else the comma-separated EXTPROC_POLICY_PUBLIC_KEY."""
    if given:
        return list(given)
    return [part.strip() for part in os.environ.get(KEYS_ENV, "").split(",") if part.strip()]


# -- commands -------------------------------------------------------------------------------


def add_commands(commands) -> None:
    policy = commands.add_parser("policy", help="sign policies: keygen, sign, verify")
    actions = policy.add_subparsers(dest="policy_command", required=True)
    keygen = actions.add_parser("keygen", help="a new Ed25519 key pair for signing policies")
    keygen.add_argument("--out", required=True, help="directory for policy.key (secret) and policy.pub")
    keygen.set_defaults(run=_keygen)
    signer = actions.add_parser("sign", help="write POLICY.sig (a detached Ed25519 signature)")
    signer.add_argument("policy")
    signer.add_argument("--key", required=True, help="PEM private key from `extproc policy keygen`")
    signer.add_argument("--out", help="where to write the signature (default: POLICY.sig)")
    signer.set_defaults(run=_sign)
    checker = actions.add_parser("verify", help="exit 0 when POLICY.sig verifies with a public key")
    checker.add_argument("policy")
    checker.add_argument("--key", action="append", required=True, help="public key file (repeatable)")
    checker.set_defaults(run=_verify)


def _keygen(args) -> int:
    secret, public = write_key_pair(Path(args.out), "policy")
    print(f"{secret} (secret: keep it off the cluster) and {public} (give it to serve --policy-public-key)")
    return 0


def _sign(args) -> int:
    try:
        signature = sign_file(Path(args.policy), Path(args.key))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else signature_path(Path(args.policy))
    out.write_bytes(signature)
    print(f"{out} written")
    return 0


def _verify(args) -> int:
    try:
        PolicyKeys.from_files(args.key).read(Path(args.policy))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.policy}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{args.policy}: signature ok")
    return 0
