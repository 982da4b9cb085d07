"""After `sam build`: the shared layer is built for the Lambda target (arm64, CPython 3.13), carries the
package without its local-cloud tooling, and leaves boto3 to the runtime. Run by `make test`."""

from __future__ import annotations

import sys
from pathlib import Path

LAYER = Path(".aws-sam/build/SharedLayer/python")
ELF_MACHINE_AARCH64 = 0xB7


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
    if not (LAYER / "shadowscale" / "composition.py").exists():
        found.append("the shadowscale package is not in the layer")
    if (LAYER / "shadowscale" / "localcloud").exists():
        found.append("the local-cloud test tooling must not ship in the layer")
    for runtime_package in ("boto3", "botocore"):
        if (LAYER / runtime_package).exists():
            found.append(f"{runtime_package} is in the layer; the Lambda runtime provides it")
    return found


if __name__ == "__main__":
    issues = problems()
    for issue in issues:
        print(f"layer: {issue}", file=sys.stderr)
    if not issues:
        count = len(list(LAYER.rglob("*.so")))
        print(f"layer: {count} compiled extension(s), all cpython-313 aarch64; package present, no boto3")
    sys.exit(1 if issues else 0)
