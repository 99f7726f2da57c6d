"""What the production hub image ships, read from hub/Dockerfile and its lock (hub/hub.lock);
tests/hub/test_hub_image_runs.py builds and starts it.

The image's files are exactly what its COPY lines name; every module among them imports only the
standard library, modules copied beside it, or distributions of the lock; the lock holds the
versions the hub code is tested with. So no local hub, benchmark, stand-in or Docker spawner code
can reach the hub pod, and nothing it imports is missing there.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from tools.lock import normalize, parse_lock

DOCKERFILE = Path("hub/Dockerfile")
LOCK = Path("hub/hub.lock")


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def copied_files() -> dict[Path, Path]:
    """Each file the COPY lines put in the image (repository path -> path in the image), less
    the lock, which the image installs and deletes."""
    files: dict[Path, Path] = {}
    for line in _instructions(DOCKERFILE.read_text()):
        if not line.startswith("COPY ") or LOCK.as_posix() in line:
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


def locked() -> dict[str, str]:
    """Distribution -> version: what the image installs."""
    return parse_lock(LOCK.read_text(), str(LOCK)).versions()


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
    assert "dockerspawner" not in locked()


def test_every_import_of_the_image_is_in_the_image() -> None:
    files = copied_files()
    shipped = {".".join(p.with_suffix("").parts) for p in files if p.suffix == ".py"}
    shipped |= {m.removesuffix(".__init__") for m in shipped}
    provided = set(locked())
    packages = metadata.packages_distributions()
    problems = []
    for path in (p for p in files if p.suffix == ".py"):
        for module in sorted(_imports(path)):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or module in shipped or top == "z2jh":
                continue  # z2jh: the chart's own helper module, beside its jupyterhub_config.py
            if top in {"hub", "catalog"}:
                problems.append(f"{path}: imports {module}, which the image does not copy")
            elif not {normalize(d) for d in packages.get(top, [])} & provided:
                problems.append(f"{path}: imports {module}, which hub/hub.lock does not install")
    assert not problems, "\n".join(problems)


def test_the_image_has_the_versions_the_hub_is_tested_with() -> None:
    """Every locked distribution that the project's resolve (which the hub's tests run with)
    also has is at that resolve's version (tools:lock-base-images resolves it so)."""
    differ = {}
    for name, version in locked().items():
        try:
            tested = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # not in the project's resolve (pycurl, pip): the lock's own
        if tested != version:
            differ[name] = f"locked {version}, tested {tested}"
    assert differ == {}, "./pants run tools:lock-base-images hub"
    assert {"jupyterhub", "jupyterhub-kubespawner", "pycurl", "kubernetes-asyncio"} <= set(locked())
