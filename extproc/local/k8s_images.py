"""Container images of deploy/k8s: each pinned by digest, or allow-listed with a reason.

    python -m extproc.local.k8s_images            # list every image and whether it is pinned
    python -m extproc.local.k8s_images --pin      # resolve each allow-listed third-party tag with
                                            # `crane digest` or `skopeo inspect` and write it in

A tag can be moved to other content by whoever controls the repository; a digest cannot. The
allow-list (deploy/k8s/unpinned-images.yaml) names the images still shipped by tag and why.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
ALLOW_LIST = K8S / "unpinned-images.yaml"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
IMAGE_LINE = re.compile(r"^(\s*image:\s*)(\S+)\s*$", re.MULTILINE)


def is_pinned(image: str) -> bool:
    return bool(DIGEST.search(image))


def allow_list() -> dict[str, str]:
    return yaml.safe_load(ALLOW_LIST.read_text(encoding="utf-8")) or {}


def kustomize_set() -> set[str]:
    """Image names a kustomization's ``images:`` replaces (the extproc image): set there."""
    names = set()
    for path in K8S.rglob("kustomization.yaml"):
        names |= {entry["name"] for entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("images", [])}
    return names


def manifest_images() -> dict[str, list[Path]]:
    """image -> the source files under deploy/k8s naming it (``image:`` lines), but for the names
    kustomize replaces."""
    found: dict[str, list[Path]] = {}
    replaced = kustomize_set()
    for path in sorted(K8S.rglob("*.yaml")):
        for match in IMAGE_LINE.finditer(path.read_text(encoding="utf-8")):
            if match.group(2) not in replaced:
                found.setdefault(match.group(2), []).append(path)
    return found


def resolve(image: str) -> str:
    """The digest of ``image`` from its registry (crane or skopeo must be installed)."""
    if shutil.which("crane"):
        command = ["crane", "digest", image]
    elif shutil.which("skopeo"):
        command = ["skopeo", "inspect", "--format", "{{.Digest}}", f"docker://{image}"]
    else:
        raise RuntimeError("neither crane nor skopeo is installed")
    digest = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise RuntimeError(f"{' '.join(command)}: unexpected answer {digest!r}")
    return digest


def pin(image: str, files: list[Path]) -> str:
    pinned = f"{image}@{resolve(image)}"
    for path in files:
        text = path.read_text(encoding="utf-8")
        path.write_text(IMAGE_LINE.sub(lambda m: m.group(1) + pinned if m.group(2) == image else m.group(0), text),
                        encoding="utf-8")
    return pinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", action="store_true", help="resolve and write the digests of tag-only images")
    args = parser.parse_args(argv)
    allowed = allow_list()
    for image, files in manifest_images().items():
        if is_pinned(image):
            print(f"pinned    {image}")
        elif args.pin:
            try:
                print(f"now       {pin(image, files)}  (remove it from {ALLOW_LIST.name})")
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"FAILED    {image}: {exc}", file=sys.stderr)
                return 1
        else:
            print(f"{'allowed' if image in allowed else 'UNPINNED':9} {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
