"""Adding a course directory changes the deployed course list and the pre-pull list, with no
edit in `infra/`: the values and the program are functions of the catalog and the image map."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from catalog import load_catalog
from infra import deploy
from infra.deploy import Inputs, render
from infra.program import Deployment
from infra.stack_config import STACKS, StackConfig
from tests.infra.support import HUB_IMAGE, image_map_for, run_program, write_course


def _infra_fingerprint(infra_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(infra_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(infra_dir).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _render(stack: StackConfig, root: Path, out: Path) -> dict[str, Any]:
    catalog = load_catalog(root)
    render(Inputs(stack, catalog, image_map_for(catalog), HUB_IMAGE), out)
    return yaml.safe_load((out / "values.yaml").read_text())


def test_a_new_course_directory_is_deployed_and_prepulled(
    tmp_path: Path, stacks: dict[str, StackConfig], infra_dir: Path
) -> None:
    before_infra = _infra_fingerprint(infra_dir)
    write_course(tmp_path, "intro-ml", "Intro ML")
    write_course(tmp_path, "deep-learning-gpu", "Deep Learning", gpu=True)
    before = {s: _render(stacks[s], tmp_path, tmp_path / "before" / s) for s in STACKS}

    write_course(tmp_path, "statistics", "Statistics with SciPy", flavor="tensorflow")
    after = {s: _render(stacks[s], tmp_path, tmp_path / "after" / s) for s in STACKS}

    assert _infra_fingerprint(infra_dir) == before_infra  # nothing in infra/ was edited
    new_ref = image_map_for(load_catalog(tmp_path))["statistics"]
    for stack in STACKS:
        old, new = before[stack], after[stack]
        assert [c["slug"] for c in old["custom"]["catalog"]] == ["deep-learning-gpu", "intro-ml"]
        assert [c["slug"] for c in new["custom"]["catalog"]] == [
            "deep-learning-gpu",
            "intro-ml",
            "statistics",
        ]
        assert new["custom"]["imageMap"]["statistics"] == new_ref
        assert set(new["prePuller"]["extraImages"]) == set(old["prePuller"]["extraImages"]) | {
            "statistics"
        }
        pulled = new["prePuller"]["extraImages"]["statistics"]
        assert f"{pulled['name']}:{pulled['tag']}" == new_ref
        # Nothing else about the deployment changed.
        for key in ("hub", "cull", "ingress", "proxy"):
            assert new[key] == old[key]


def test_the_program_deploys_the_new_course_too(
    tmp_path: Path, stacks: dict[str, StackConfig]
) -> None:
    write_course(tmp_path, "intro-ml", "Intro ML")
    catalog = load_catalog(tmp_path)
    first = run_program(Deployment(stacks["dev"], catalog, image_map_for(catalog), HUB_IMAGE))
    write_course(tmp_path, "new-course", "New")
    catalog = load_catalog(tmp_path)
    second = run_program(Deployment(stacks["dev"], catalog, image_map_for(catalog), HUB_IMAGE))

    def release_values(run: Any) -> dict[str, Any]:
        return run.named("kubernetes:helm.sh/v3:Release", "jupyterhub").inputs["values"]

    assert "new-course" not in release_values(first)["prePuller"]["extraImages"]
    assert "new-course" in release_values(second)["prePuller"]["extraImages"]
    assert "new-course" in second.outputs["courseImages"]
    (policy,) = (
        r.inputs["policy"]
        for r in second.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
        if r.inputs["repository"] == "ol-course-notebooks"
    )
    assert image_map_for(catalog)["new-course"].rsplit(":", 1)[1] in policy


def test_the_deploy_cli_reads_the_repositorys_catalog(
    tmp_path: Path, infra_dir: Path, monkeypatch: Any
) -> None:
    root = tmp_path / "repo"
    (root / "infra").mkdir(parents=True)
    (root / "pants.toml").write_text("")
    for stack_file in infra_dir.glob("Pulumi*.yaml"):
        (root / "infra" / stack_file.name).write_bytes(stack_file.read_bytes())
    write_course(root, "alpha", "Alpha")
    monkeypatch.setenv("MONOREPO_ROOT", str(root))
    monkeypatch.chdir(root)
    assert deploy.main(["--stack", "stage", "--render", "one"]) == 0
    write_course(root, "beta", "Beta", gpu=True)
    assert deploy.main(["--stack", "stage", "--render", "two"]) == 0
    one = yaml.safe_load((root / "one" / "values.yaml").read_text())
    two = yaml.safe_load((root / "two" / "values.yaml").read_text())
    assert set(one["prePuller"]["extraImages"]) == {"alpha"}
    # beta is a GPU course: the chart's pre-puller pulls its CPU image (for its servers without
    # a GPU), infra's own pre-puller its CUDA image, on GPU nodes.
    assert set(two["prePuller"]["extraImages"]) == {"alpha", "beta--cpu"}
    assert not (root / "one" / "manifests.yaml").read_text().count("kind: DaemonSet")
    puller = next(yaml.safe_load_all((root / "two" / "manifests.yaml").read_text()))
    images = [c["image"] for c in puller["spec"]["template"]["spec"]["initContainers"]]
    assert [image.rsplit(":", 1)[1] for image in images] == ["beta-<content-hash>"]
    assert [c["slug"] for c in two["custom"]["catalog"]] == ["alpha", "beta"]
