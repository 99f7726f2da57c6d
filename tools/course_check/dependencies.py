"""Which modules a course can import: its base flavor's, its requirements.txt's, the stdlib's.

The flavors' contents are an inventory taken from the built base images
(`flavor_modules.json`, written by `./pants run tools:flavor-modules`; a test compares it with the
images so that it cannot drift). A course's own requirements map to modules through that
inventory, a table of well-known distributions whose import name differs, the distribution's own
name, and `# provides: module` comments on the requirement line for anything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from tools.lock import normalize

#: Import name -> distribution, for well-known packages a notebook may import without the course
#: providing them; used to say what to add to requirements.txt. (Import names that equal the
#: distribution name need no entry.)
KNOWN_DISTRIBUTIONS: Mapping[str, str] = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "yaml": "PyYAML",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "Bio": "biopython",
    "Crypto": "pycryptodome",
    "jwt": "PyJWT",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "dotenv": "python-dotenv",
    "serial": "pyserial",
    "zmq": "pyzmq",
    "OpenSSL": "pyOpenSSL",
    "fitz": "PyMuPDF",
    "umap": "umap-learn",
    "sentence_transformers": "sentence-transformers",
    "google.protobuf": "protobuf",
    "tf_keras": "tf-keras",
    "torch": "torch",
    "torchvision": "torchvision",
    "torchaudio": "torchaudio",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "jax": "jax",
    "seaborn": "seaborn",
    "plotly": "plotly",
    "statsmodels": "statsmodels",
    "sympy": "sympy",
    "networkx": "networkx",
    "nltk": "nltk",
    "spacy": "spacy",
    "transformers": "transformers",
    "datasets": "datasets",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "tabulate": "tabulate",
    "tqdm": "tqdm",
    "requests": "requests",
    "polars": "polars",
    "pyarrow": "pyarrow",
    "duckdb": "duckdb",
    "altair": "altair",
    "bokeh": "bokeh",
    "folium": "folium",
    "geopandas": "geopandas",
    "shapely": "shapely",
    "h5py": "h5py",
    "openpyxl": "openpyxl",
    "xlrd": "xlrd",
    "lxml": "lxml",
    "shap": "shap",
    "pymc": "pymc",
    "arviz": "arviz",
    "ipywidgets": "ipywidgets",
}

INVENTORY_FILE = "flavor_modules.json"


@dataclass(frozen=True)
class Flavor:
    """What one base image flavor provides."""

    name: str
    #: Every top-level module importable in the image (stdlib and installed).
    modules: frozenset[str]
    #: Top-level module -> distributions providing it (installed ones only).
    distributions: Mapping[str, tuple[str, ...]]
    #: Normalized distribution name -> version.
    installed: Mapping[str, str] = field(default_factory=dict)

    def modules_of(self, distribution: str) -> set[str]:
        wanted = normalize(distribution)
        return {
            module
            for module, dists in self.distributions.items()
            if any(normalize(d) == wanted for d in dists)
        }


def flavors_from_json(data: Mapping) -> dict[str, Flavor]:
    return {
        name: Flavor(
            name=name,
            modules=frozenset(entry["modules"]),
            distributions={k: tuple(v) for k, v in entry["distributions"].items()},
            installed=dict(entry.get("installed", {})),
        )
        for name, entry in data["flavors"].items()
    }


@lru_cache(maxsize=1)
def load_flavors() -> dict[str, Flavor]:
    """The committed inventory of the base image flavors."""
    text = resources.files(__package__).joinpath(INVENTORY_FILE).read_text(encoding="utf-8")
    return flavors_from_json(json.loads(text))


# --- requirements.txt ---------------------------------------------------------------------

_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?P<extras>\[[^\]]*\])?\s*"
    r"(?P<spec>[^;@]*?)\s*(?P<url>@\s*\S+)?\s*(?P<marker>;.*)?$"
)
_PINNED = re.compile(r"^===?\s*[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
_PROVIDES = re.compile(r"provides:\s*([A-Za-z0-9_., ]+)")
_ALLOWED_OPTIONS = ("--hash",)


@dataclass(frozen=True)
class Requirement:
    line: int
    text: str
    name: str  # as written
    pinned: bool
    #: Modules named in a `# provides: a, b` comment.
    provides: tuple[str, ...] = ()
    #: The exact version of a `name==version` pin; None otherwise.
    version: str | None = None


@dataclass(frozen=True)
class RequirementProblem:
    line: int
    text: str
    message: str


def parse_requirements(text: str) -> tuple[list[Requirement], list[RequirementProblem]]:
    """A course's requirements.txt: requirement lines, and lines that are not allowed."""
    requirements, problems = [], []
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        logical.append((start, pending + raw))
        pending = ""
    if pending:
        logical.append((start, pending))
    for number, line in logical:
        body, _, comment = line.partition(" #")
        if line.lstrip().startswith("#"):
            body, comment = "", line.lstrip()[1:]
        body = body.strip()
        if not body:
            continue
        if body.startswith("-"):
            problems.append(
                RequirementProblem(
                    number,
                    body,
                    "options (-r, -e, -c, --index-url...) are not allowed: list pinned packages "
                    "only, one `name==version` per line",
                )
            )
            continue
        options = [part for part in body.split() if part.startswith("--")]
        for option in options:
            if not option.startswith(_ALLOWED_OPTIONS):
                problems.append(
                    RequirementProblem(number, body, f"option {option} is not allowed here")
                )
        requirement = " ".join(part for part in body.split() if not part.startswith("--"))
        match = _REQUIREMENT.match(requirement)
        if not match:
            problems.append(
                RequirementProblem(number, body, "is not a requirement like `name==version`")
            )
            continue
        spec = match.group("spec").replace(" ", "")
        url = match.group("url")
        pinned = bool(_PINNED.match(spec)) if not url else "sha256=" in url
        provides_match = _PROVIDES.search(comment)
        provides = tuple(
            p.strip() for p in (provides_match.group(1) if provides_match else "").split(",")
        )
        version = spec.lstrip("=") if pinned and not url else None
        requirements.append(
            Requirement(
                number, body, match.group("name"), pinned, tuple(p for p in provides if p), version
            )
        )
    return requirements, problems


def modules_of_requirements(
    requirements: Iterable[Requirement], flavors: Mapping[str, Flavor]
) -> dict[str, str]:
    """Top-level module -> the requirement (distribution) that provides it."""
    provided: dict[str, str] = {}
    by_distribution: dict[str, set[str]] = {}
    for module, dist in KNOWN_DISTRIBUTIONS.items():
        by_distribution.setdefault(normalize(dist), set()).add(module.split(".")[0])
    for requirement in requirements:
        normalized = normalize(requirement.name)
        modules = {requirement.name.replace("-", "_").replace(".", "_")}
        modules |= {normalized.replace("-", "_")}
        modules |= by_distribution.get(normalized, set())
        for flavor in flavors.values():
            modules |= flavor.modules_of(normalized)
        # tensorflow-cpu / tensorflow-gpu / opencv-python... provide the module of the base name
        for suffix in ("-cpu", "-gpu", "-headless"):
            if normalized.endswith(suffix):
                base = normalized[: -len(suffix)]
                modules |= by_distribution.get(base, set()) | {base.replace("-", "_")}
        modules |= set(requirement.provides)
        for module in modules:
            provided.setdefault(module, requirement.name)
    return provided


def suggest_distribution(module: str, flavors: Mapping[str, Flavor]) -> str | None:
    """The distribution that would provide `module` (top-level or dotted), where known."""
    for name in (module, module.split(".")[0]):
        if name in KNOWN_DISTRIBUTIONS:
            return KNOWN_DISTRIBUTIONS[name]
    for flavor in flavors.values():
        dists = flavor.distributions.get(module.split(".")[0])
        if dists:
            return dists[0]
    return None


def missing_module_advice(
    module: str, flavors: Mapping[str, Flavor], current_flavor: str | None = None
) -> str:
    """What to do about a module a course cannot import (top-level or dotted).

    Never a pin of a version some flavor has installed: when the course's own flavor has the
    module, something in the course's lock broke it; when another flavor has it, that flavor is
    the fix (a pin would install a second copy on the wrong base). Else the distribution that
    provides it, to add to requirements.txt and lock.
    """
    top = module.split(".")[0]
    if current_flavor is not None:
        if current_flavor in flavors and top in flavors[current_flavor].modules:
            provider = suggest_distribution(module, {})
            flavor = flavors[current_flavor]
            has_provider = provider is not None and normalize(provider) in {
                normalize(d) for d in flavor.distributions.get(top, ())
            }
            if module != top and (provider is None or has_provider):
                # The flavor has the package, not this part of it: whatever imports it was
                # written for another version of the package. (A namespace package's other
                # parts, `google.cloud`, come from distributions of their own: advised below.)
                versions = [
                    f"{d} {flavor.installed[normalize(d)]}"
                    for d in flavor.distributions.get(top, ())
                    if normalize(d) in flavor.installed
                ]
                which = f" ({', '.join(versions)})" if versions else ""
                return (
                    f"the {current_flavor} flavor has `{top}`{which} but no `{module}`: the code "
                    f"that imports it (the cell, or a package it uses) was written for another "
                    f"version of {top}; use a version of that package made for this one"
                )
            return (
                f"the {current_flavor} flavor has it installed: a package of requirements.lock "
                "may have replaced or broken it (pinning it again does not help)"
            )
        others = sorted(f.name for f in flavors.values() if top in f.modules)
        if others:
            return (
                f'the {others[0]} flavor provides it: set `flavor = "{others[0]}"` in course.toml'
            )
    distribution = suggest_distribution(module, flavors)
    lock = "then run `./pants run tools:pin-requirements -- <course>` to lock it"
    if distribution:
        return (
            f"it is provided by the distribution {distribution}: add `{distribution}==<version>` "
            f"to requirements.txt, {lock}"
        )
    return (
        "add the distribution that provides it to requirements.txt and lock it (if a requirement "
        f"already provides it under another name, write `# provides: {top}` after it)"
    )
