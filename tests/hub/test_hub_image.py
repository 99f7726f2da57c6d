"""What the production hub image ships: read from hub/Dockerfile (its base comes from quay.io, so
the image cannot be built on these machines; the test reads the Dockerfile's contract instead).

The image's files are exactly what its COPY lines name; every module among them imports only the
standard library, modules copied beside it, or distributions its `pip install` brings (and
theirs), at the versions the hub code is tested with. So no local hub, benchmark, stand-in or
Docker spawner code can reach the hub pod, and nothing it imports is missing there.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from infra.values import CHART_VERSION

DOCKERFILE = Path("hub/Dockerfile")


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def copied_files() -> dict[Path, Path]:
    """Each file the COPY lines put in the image (repository path -> path in the image)."""
    files: dict[Path, Path] = {}
    for line in _instructions(DOCKERFILE.read_text()):
        if not line.startswith("COPY "):
            continue
        *sources, target = line.split()[1:]
        for source in sources:
            matched = sorted(
                Path().glob(source.rstrip("/") + ("/**/*" if source[-1] == "/" else ""))
            )
            assert matched, f"COPY {source}: matches nothing"
            for path in (p for p in matched if p.is_file()):
                relative = path.relative_to(source.rstrip("/")) if source[-1] == "/" else path.name
                files[path] = Path(target) / relative
    return files


def pip_installed() -> dict[str, str]:
    """Distribution -> pinned version, from the Dockerfile's `pip install`."""
    (line,) = (i for i in _instructions(DOCKERFILE.read_text()) if "pip install" in i)
    pins = re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s]*)", line)
    return {_normal(name): version for name, version in pins}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: set[str]) -> set[str]:
    """The distributions and everything they require (as installed in this test's environment)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = _normal(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def _imports(path: Path) -> set[str]:
    """The modules `path` imports, less the fallbacks of `except ImportError:` (catalog's `toml`
    for Pants' Python 3.9, where the image's Python has `tomllib`)."""
    tree = ast.parse(path.read_text(), str(path))
    fallbacks = {
        id(inner)
        for handler in ast.walk(tree)
        if isinstance(handler, ast.ExceptHandler)
        and isinstance(handler.type, ast.Name)
        and handler.type.id in ("ImportError", "ModuleNotFoundError")
        for inner in ast.walk(handler)
    }
    found: set[str] = set()
    for node in (n for n in ast.walk(tree) if id(n) not in fallbacks):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_image_holds_only_the_production_hub_and_the_catalog() -> None:
    files = copied_files()
    folders = {path.parts[0] for path in files}
    assert folders == {"hub", "catalog"}
    assert {p.name for p in files if p.parts[0] == "hub" and p.suffix == ".py"} >= {
        "z2jh.py",
        "spawner.py",
        "sso.py",
        "auth.py",
    }
    assert not [p for p in files if p.suffix not in (".py", ".html")]
    assert "dockerspawner" not in pip_installed()


def test_every_import_of_the_image_is_in_the_image() -> None:
    files = copied_files()
    shipped = {".".join(p.with_suffix("").parts) for p in files if p.suffix == ".py"}
    shipped |= {m.removesuffix(".__init__") for m in shipped}
    provided = _closure(set(pip_installed()))
    packages = metadata.packages_distributions()
    problems = []
    for path in (p for p in files if p.suffix == ".py"):
        for module in sorted(_imports(path)):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or module in shipped or top == "z2jh":
                continue  # z2jh: the chart's own helper module, beside its jupyterhub_config.py
            if top in {"hub", "catalog"}:
                problems.append(f"{path}: imports {module}, which the image does not copy")
            elif not {_normal(d) for d in packages.get(top, [])} & provided:
                problems.append(f"{path}: imports {module}, which `pip install` does not bring")
    assert not problems, "\n".join(problems)


def test_the_image_is_the_charts_hub_image_of_the_deployed_chart() -> None:
    """The hub runs on zero-to-jupyterhub's hub image of the chart version infra deploys."""
    (line,) = (i for i in _instructions(DOCKERFILE.read_text()) if i.startswith("ARG HUB_BASE"))
    assert line == f"ARG HUB_BASE_IMAGE=quay.io/jupyterhub/k8s-hub:{CHART_VERSION}"


def test_the_image_pins_the_versions_the_hub_is_tested_with() -> None:
    """The resolve's versions (3rdparty/python), which this test runs with, as the hub's tests do."""
    pinned = pip_installed()
    assert {name: metadata.version(name) for name in pinned} == pinned
