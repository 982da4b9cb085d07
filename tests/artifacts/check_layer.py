"""After `sam build`: the shared layer is built for the Lambda target (arm64, CPython 3.13); its shadowscale
package holds exactly the modules the functions import, transitively (no cli, no local cloud, nothing no
function reaches); and it ships the pinned boto3/botocore, which import from the layer alone and can make
conditional S3 writes. Prints the layer's size, and what the layout before the feature-first split (commit
OLD_LAYOUT, the whole package but its local cloud) shipped. Run by `make artifacts`."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

LAYER = Path(".aws-sam/build/SharedLayer/python")
PACKAGE = LAYER / "shadowscale"
FUNCTIONS = Path("functions")
REQUIREMENTS = Path("layers/shadowscale/requirements.txt")
PYPROJECT = Path("pyproject.toml")
ELF_MACHINE_AARCH64 = 0xB7
SDK = ("boto3", "botocore")
# Test tooling that must never ship: the local cloud (shadowscale_localcloud; shadowscale/localcloud before the
# feature-first split), moto, pytest.
TEST_TOOLING = ("shadowscale_localcloud", "shadowscale/localcloud", "moto", "pytest")
OLD_LAYOUT = "c42ba9e"

# Run by a Python that sees the standard library and the layer only (-I -S: no site-packages, no
# PYTHONPATH) and writes no bytecode into it (-B: what is checked is what ships). The SDK is pure Python, so
# it imports here although the layer's compiled extensions are arm64; the conditional-write check is the
# adapter's own (it imports botocore and nothing compiled).
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
    found.extend(package_problems())
    found.extend(sdk_problems())
    return found


# --- the package: exactly what the functions import ------------------------------------------------------


def package_modules() -> dict[str, Path]:
    """The layer's shadowscale modules by dotted name (a package by its own name, for its __init__.py)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(LAYER).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node Python runs: the body of `if TYPE_CHECKING:` is left out (its `else` is not)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                yield branch
                yield from _runtime_nodes(branch)
            continue
        yield node
        yield from _runtime_nodes(node)


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The shadowscale modules a file imports when it runs (at import or inside a function), with every
    package above them (importing a.b.c runs a/__init__.py and a/b/__init__.py)."""
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports a.b, and a.b.c too when c is a module rather than a name.
            names.add(node.module)
            names |= {
                f"{node.module}.{alias.name}" for alias in node.names if _is_module(node.module, alias.name, modules)
            }
    ours = {name for name in names if name == "shadowscale" or name.startswith("shadowscale.")}
    return {".".join(name.split(".")[:depth]) for name in ours for depth in range(1, name.count(".") + 2)}


def _is_module(parent: str, name: str, modules: dict[str, Path]) -> bool:
    """Whether `from parent import name` names a module: one the layer has, or, from a package whose
    __init__.py does not define `name`, one it should have."""
    if f"{parent}.{name}" in modules:
        return True
    init = modules.get(parent)
    if init is None or init.name != "__init__.py":
        return False
    return name not in {bound for node in ast.parse(init.read_text()).body for bound in _bound_names(node)}


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {target.id for target in targets if isinstance(target, ast.Name)}
    return set()


def function_closure(modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(the shadowscale modules functions/*/app.py import transitively, those of them the layer lacks)."""
    reached: set[str] = set()
    pending = [name for app in sorted(FUNCTIONS.glob("*/app.py")) for name in imported(app, modules)]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        if name in modules:
            pending.extend(imported(modules[name], modules) - reached)
    return reached, reached - set(modules)


def is_declared_package_data(path: Path, declared: dict[str, list[str]]) -> bool:
    """Whether pyproject's [tool.setuptools.package-data] (`declared`) names the file (the report's vendored
    charting library): data the package reads at run time, not a stray."""
    for package, patterns in declared.items():
        folder = LAYER.joinpath(*package.split("."))
        if path.is_relative_to(folder) and any(path.relative_to(folder).match(pattern) for pattern in patterns):
            return True
    return False


def package_problems() -> list[str]:
    if not (PACKAGE / "__init__.py").is_file():
        return ["the shadowscale package is not in the layer"]
    found = []
    modules = package_modules()
    reached, missing = function_closure(modules)
    if missing:
        found.append(f"functions import modules the layer lacks: {', '.join(sorted(missing))}")
    if extra := set(modules) - reached:
        found.append(f"the layer ships modules no function imports: {', '.join(sorted(extra))}")
    if (PACKAGE / "cli").exists():
        found.append("the cli must not ship in the layer (it stays on the operator's machine)")
    found += [f"{tool} must not ship in the layer (test tooling)" for tool in TEST_TOOLING if (LAYER / tool).exists()]
    declared: dict[str, list[str]] = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"].get("package-data", {})
    strays = [
        str(path.relative_to(LAYER))
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix != ".py" and not is_declared_package_data(path, declared)
    ]
    if strays:
        found.append(f"the package carries files that are not modules: {', '.join(sorted(strays))}")
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
        [sys.executable, "-I", "-S", "-B", "-c", SDK_PROBE, str(LAYER.resolve())],
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


# --- sizes ---------------------------------------------------------------------------------------------


def size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def old_package_size() -> int | None:
    """What OLD_LAYOUT's layer build shipped of the package: all of it but its local cloud (git's blob sizes;
    None when git or the commit is not at hand)."""
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "-l", OLD_LAYOUT, "--", "layers/shadowscale/shadowscale"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0 or not listed.stdout:
        return None
    total = 0
    for line in listed.stdout.splitlines():
        meta, path = line.split("\t", 1)
        if not path.startswith("layers/shadowscale/shadowscale/localcloud/"):
            total += int(meta.split()[3])
    return total


def same_requirements_as_old_layout() -> bool:
    unchanged = subprocess.run(
        ["git", "diff", "--quiet", OLD_LAYOUT, "--", str(REQUIREMENTS)], capture_output=True, check=False
    )
    return unchanged.returncode == 0


def report_sizes() -> None:
    total, package = size(LAYER.parent), size(PACKAGE)
    modules = len(package_modules())
    print(f"layer: {total / 1e6:.2f} MB unzipped; the shadowscale package {package / 1e3:.1f} kB in {modules} modules")
    old = old_package_size()
    if old is None:
        return
    line = f"layer: {OLD_LAYOUT}'s layout (the whole package but its local cloud) shipped {old / 1e3:.1f} kB of package"
    if same_requirements_as_old_layout():  # the same third-party wheels: the totals differ by the package alone
        line += f" in a {(total - package + old) / 1e6:.2f} MB layer"
    change = package - old
    print(f"{line}; now {abs(change) / 1e3:.1f} kB {'more' if change > 0 else 'less'}")


if __name__ == "__main__":
    issues = problems()
    for issue in issues:
        print(f"layer: {issue}", file=sys.stderr)
    if not issues:
        count = len(list(LAYER.rglob("*.so")))
        sdk = ", ".join(f"{package}=={pins()[package]}" for package in SDK)
        print(
            f"layer: {count} compiled extension(s), all cpython-313 aarch64; the package holds exactly the modules"
            f" the functions import; {sdk} import from the layer alone, S3 PutObject takes IfMatch and IfNoneMatch"
        )
    if LAYER.is_dir():
        report_sizes()
    sys.exit(1 if issues else 0)
