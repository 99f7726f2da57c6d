"""The flavors (catalog/flavors.py): the resources a course gets where course.toml names none,
and the flavor an upstream image stands for."""

from __future__ import annotations

import pytest

from catalog import parse_course, parse_course_leniently
from catalog.course import Resources, default_resources
from catalog.flavors import FLAVORS, flavor_of_image

GiB = 2**30


@pytest.mark.parametrize(
    ("flavor", "gpu", "expected"),
    [
        ("pytorch", False, Resources(2 * GiB, 1 * GiB, 2.0, 0.5)),
        ("pytorch", True, Resources(4 * GiB, 2 * GiB, 2.0, 0.5)),
        ("tensorflow", False, Resources(4 * GiB, 2 * GiB, 2.0, 0.5)),
        ("tensorflow", True, Resources(4 * GiB, 2 * GiB, 2.0, 0.5)),
    ],
)
def test_a_course_without_resources_gets_its_flavors(
    flavor: str, gpu: bool, expected: Resources
) -> None:
    text = f'title = "T"\nflavor = "{flavor}"\ngpu = {str(gpu).lower()}\nnotebooks = ["a.ipynb"]\n'
    course = parse_course("c", text, {"a.ipynb": "", "requirements.txt": ""})
    assert course.resources == default_resources(flavor, gpu) == expected
    assert course.base_image == f"images/base:{flavor}{'-gpu' if gpu else ''}"


@pytest.mark.parametrize(
    ("image", "flavor"),
    [
        ("quay.io/jupyter/pytorch-notebook:2024-10-07", "pytorch"),
        ("jupyter/scipy-notebook@sha256:" + "a" * 64, "pytorch"),
        ("quay.io/jupyter/tensorflow-notebook:cuda-2024-10-07", "tensorflow"),
        ("tensorflow/tensorflow:2.17.0-jupyter", "tensorflow"),
        ("python:3.11-slim", None),
        ("registry.example.org:5000/team/custom", None),
    ],
)
def test_the_flavor_of_an_upstream_image(image: str, flavor: str | None) -> None:
    assert flavor_of_image(image) == flavor
    assert flavor is None or flavor in FLAVORS


def test_a_flavor_that_is_no_name_is_a_problem_not_a_crash() -> None:
    text = 'title = "T"\nflavor = ["pytorch"]\nnotebooks = ["a.ipynb"]\n'
    reading = parse_course_leniently("c", text, ["a.ipynb", "requirements.txt"])
    assert [p.key for p in reading.problems] == ["flavor"]
