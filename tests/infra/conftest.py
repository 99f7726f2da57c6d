"""Fixtures for the infra tests: the repo's stack files, fixture catalogs, the chart's schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import Catalog, find_repo_root, load_catalog
from infra.stack_config import STACKS, StackConfig, load_stack_config
from tests.infra.support import SAMPLE_COURSES, write_course


def pytest_configure(config: pytest.Config) -> None:
    # pulumi-aws warns about its own deprecated data sources when its modules load.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return find_repo_root()


@pytest.fixture(scope="session")
def infra_dir(repo_root: Path) -> Path:
    return repo_root / "infra"


@pytest.fixture(scope="session")
def stacks(infra_dir: Path) -> dict[str, StackConfig]:
    return {name: load_stack_config(infra_dir, name) for name in STACKS}


@pytest.fixture(scope="session")
def chart_reference(repo_root: Path) -> Path:
    reference = repo_root.parent / "shared" / "reference" / "z2jh-4.4.0"
    if not (reference / "values.schema.yaml").is_file():
        pytest.skip(
            f"the zero-to-jupyterhub 4.4.0 chart schema is not at {reference} "
            "(../shared/reference/ beside the repository, as on the build machines)"
        )
    return reference


@pytest.fixture(scope="session")
def chart_schema(chart_reference: Path) -> dict[str, Any]:
    return yaml.safe_load((chart_reference / "values.schema.yaml").read_text())


@pytest.fixture(scope="session")
def chart_defaults(chart_reference: Path) -> dict[str, Any]:
    return yaml.safe_load((chart_reference / "values.yaml").read_text())


@pytest.fixture
def make_catalog(tmp_path: Path) -> Callable[..., Catalog]:
    """Writes fixture courses under a temp repo root and loads them with the catalog library."""

    def make(courses: dict[str, dict[str, Any]] | None = None) -> Catalog:
        for slug, spec in (SAMPLE_COURSES if courses is None else courses).items():
            write_course(tmp_path, slug, **spec)
        return load_catalog(tmp_path)

    return make


@pytest.fixture
def sample_catalog(make_catalog: Callable[..., Catalog]) -> Catalog:
    return make_catalog()
