"""``extproc service-token``: make a service token (a random secret and its salted hash), or hash
an existing secret read from standard input."""
from __future__ import annotations

import argparse
import os
import sys

from extproc.access.service_tokens import hash_secret, new_secret
from extproc.access.settings import NAME, AccessBlock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="a new random secret (shown once) and the policy entry with its hash")
    new.add_argument("name", help="the token's name in access.service_tokens (policies refer to it)")
    new.add_argument("--client-id", help="the id the client sends (default: NAME.access)")
    new.add_argument("--hash-file", help="write the hash to this new file (mode 0600), e.g. a Secret's key")
    hashed = actions.add_parser("hash", help="the salted hash of a secret read from standard input")
    hashed.add_argument("--hash-file", help="write it to this new file (mode 0600) instead of printing it")


def run(args: argparse.Namespace) -> int:
    try:
        return _new(args) if args.action == "new" else _hash(args)
    except (ValueError, OSError) as exc:
        print(f"service-token: {exc}", file=sys.stderr)
        return 2


def _new(args: argparse.Namespace) -> int:
    import re

    if not re.fullmatch(NAME, args.name):
        raise ValueError(f"{args.name!r}: a name is letters, digits, '_', '.', '-' (at most 64)")
    client_id = args.client_id or f"{args.name}.access"
    secret = new_secret()
    stored = _store(hash_secret(secret), args.hash_file)
    headers = AccessBlock().service_token_headers
    print(f"# The client sends these headers. The secret is shown only now and stored nowhere.\n"
          f"{headers[0]}: {client_id}\n{headers[1]}: {secret}\n"
          f"# In the policy, under access.service_tokens:\n"
          f"{args.name}: {{client_id: {client_id}, {stored}}}")
    return 0


def _hash(args: argparse.Namespace) -> int:
    secret = sys.stdin.readline().rstrip("\r\n")
    print(_store(hash_secret(secret), args.hash_file).partition(": ")[2])
    return 0


def _store(hashed: str, path: str | None) -> str:
    """The policy field for the hash: inline, or the file it was written to."""
    if path is None:
        return f"secret_hash: {hashed}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never overwrite a token
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(hashed + "\n")
    return f"secret_hash_file: {os.path.abspath(path)}"
