"""The rendered Helm values of every stack validate against the zero-to-jupyterhub 4.4.0 chart's
own schema (`../shared/reference/z2jh-4.4.0/values.schema.yaml`).

Stands in for `helm install`/`helm upgrade`, which cannot run here: Helm coalesces the release's
values onto the chart's `values.yaml` and validates the result against `values.schema.json`
before rendering anything. The test does the same merge (maps merge, lists and scalars replace)
and the same JSON-schema (draft 7) validation, so a key the chart does not know or a value of
the wrong type fails here as it would fail the deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from catalog import Catalog
from infra.deploy import Inputs, render
from infra.stack_config import STACKS, StackConfig
from tests.infra.support import HUB_IMAGE, image_map_for, merge_like_helm


def _errors(schema: dict[str, Any], values: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(values)
    )


def _rendered_values(stack: StackConfig, catalog: Catalog, directory: Path, built: bool) -> Any:
    inputs = Inputs(
        stack=stack,
        catalog=catalog,
        image_map=image_map_for(catalog) if built else None,
        hub_image=HUB_IMAGE if built else None,
    )
    render(inputs, directory)
    return yaml.safe_load((directory / "values.yaml").read_text())


@pytest.mark.parametrize("built", [True, False], ids=["images-built", "placeholders"])
@pytest.mark.parametrize("name", STACKS)
def test_rendered_values_validate_against_the_chart_schema(
    stacks: dict[str, StackConfig],
    sample_catalog: Catalog,
    chart_schema: dict[str, Any],
    chart_defaults: dict[str, Any],
    tmp_path: Path,
    name: str,
    built: bool,
) -> None:
    values = _rendered_values(stacks[name], sample_catalog, tmp_path / name, built)
    assert _errors(chart_schema, merge_like_helm(chart_defaults, values)) == []


def test_the_validation_catches_what_the_chart_refuses(
    stacks: dict[str, StackConfig],
    sample_catalog: Catalog,
    chart_schema: dict[str, Any],
    chart_defaults: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Guards the test above against passing vacuously."""
    values = _rendered_values(stacks["dev"], sample_catalog, tmp_path, True)
    broken = merge_like_helm(values, {"singleuser": {"storage": {"type": "ephemeral"}}})
    broken["hub"]["db"]["passwrd"] = "x"
    broken["prePuller"]["extraImages"]["intro-ml"]["pullPolicy"] = "Sometimes"
    errors = _errors(chart_schema, merge_like_helm(chart_defaults, broken))
    assert any(e.startswith("singleuser.storage.type") for e in errors), errors
    assert any(e.startswith("hub.db") and "passwrd" in e for e in errors), errors
    assert any(e.startswith("prePuller.extraImages.intro-ml.pullPolicy") for e in errors), errors


def test_the_merge_is_helms(chart_defaults: dict[str, Any]) -> None:
    merged = merge_like_helm(chart_defaults, {"cull": {"every": 1}, "imagePullSecrets": ["x"]})
    assert (
        merged["cull"]["every"] == 1
        and merged["cull"]["timeout"] == chart_defaults["cull"]["timeout"]
    )
    assert merged["imagePullSecrets"] == ["x"]
