"""After `sam build`: the shared layer is built for the Lambda target (arm64, CPython 3.13), carries the
package without its local-cloud tooling, and ships the pinned boto3/botocore, which import from the layer
alone and can make conditional S3 writes. Run by `make artifacts`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

LAYER = Path(".aws-sam/build/SharedLayer/python")
REQUIREMENTS = Path("layers/shadowscale/requirements.txt")
ELF_MACHINE_AARCH64 = 0xB7
SDK = ("boto3", "botocore")

# Run by a Python that sees the standard library and the layer only (-I -S: no site-packages, no
# PYTHONPATH). The SDK is pure Python, so it imports here although the layer's compiled extensions are
# arm64; the conditional-write check is the adapter's own (it imports botocore and nothing compiled).
SDK_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import boto3, botocore
from shadowscale.shared.sdk_features import missing_put_object_parameters
client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
print(json.dumps({
    "versions": {"boto3": boto3.__version__, "botocore": botocore.__version__},
    "files": {"boto3": boto3.__file__, "botocore": botocore.__file__},
    "missing": list(missing_put_object_parameters(client.meta.service_model)),
}))
"""


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    return int.from_bytes(header[18:20], "little")


def problems() -> list[str]:
    if not LAYER.is_dir():
        return [f"{LAYER} is missing: run `make build` first"]
    found: list[str] = []
    extensions = list(LAYER.rglob("*.so"))
    if not extensions:
        found.append("no compiled extensions found (pydantic-core should be one)")
    for extension in extensions:
        if "cpython-313-aarch64-linux-gnu" not in extension.name:
            found.append(f"{extension}: not built for CPython 3.13 on aarch64")
        if elf_machine(extension) != ELF_MACHINE_AARCH64:
            found.append(f"{extension}: ELF machine is not aarch64")
    for capability in ("shared", "capacity", "shadow_tests", "response_diffs"):
        if not (LAYER / "shadowscale" / capability / "wiring.py").exists() and capability != "shared":
            found.append(f"the {capability} capability is not in the layer")
    if not (LAYER / "shadowscale" / "shared" / "settings.py").exists():
        found.append("the shared kernel is not in the layer")
    for absent in ("cli", "localcloud"):
        if (LAYER / "shadowscale" / absent).exists():
            found.append(f"shadowscale/{absent} is operator or test tooling: it must not ship in the layer")
    if (LAYER / "shadowscale_localcloud").exists():
        found.append("the local cloud (test tooling) must not ship in the layer")
    found.extend(sdk_problems())
    return found


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.split("#", 1)[0].strip()):
            found[match.group(1).lower()] = match.group(2)
    return found


def sdk_problems() -> list[str]:
    for package in SDK:
        if not (LAYER / package / "__init__.py").exists():
            return [f"{package} is not in the layer (the runtime's bundled SDK is not pinned)"]
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SDK_PROBE, str(LAYER.resolve())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        return [f"the layer's SDK does not import from the layer alone: {probe.stderr.strip()[-2000:]}"]
    seen = json.loads(probe.stdout)
    found = []
    wanted = pins()
    for package in SDK:
        if seen["versions"][package] != wanted.get(package):
            found.append(f"{package} {seen['versions'][package]} in the layer, {wanted.get(package)} pinned")
        if not Path(seen["files"][package]).resolve().is_relative_to(LAYER.resolve()):
            found.append(f"{package} was imported from {seen['files'][package]}, not from the layer")
    if seen["missing"]:
        found.append(f"the layer's botocore S3 PutObject lacks {', '.join(seen['missing'])}")
    return found


if __name__ == "__main__":
    issues = problems()
    for issue in issues:
        print(f"layer: {issue}", file=sys.stderr)
    if not issues:
        count = len(list(LAYER.rglob("*.so")))
        size = sum(path.stat().st_size for path in LAYER.rglob("*") if path.is_file())
        sdk = ", ".join(f"{package}=={pins()[package]}" for package in SDK)
        print(
            f"layer: {count} compiled extension(s), all cpython-313 aarch64; package present; {sdk} import from"
            f" the layer alone, S3 PutObject takes IfMatch and IfNoneMatch; {size / 1e6:.1f} MB unzipped"
        )
    sys.exit(1 if issues else 0)
