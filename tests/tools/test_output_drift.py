"""Output drift (tools/course_check/drift.py): what cells show now against the outputs saved with
the notebook. Plain data in, the drifted cells out."""

from __future__ import annotations

import pytest

from tools.course_check.drift import output_drift
from tools.course_check.report import drift_table


def brief(text: str = "", images: list | None = None, error: str | None = None) -> dict:
    return {"text": text, "images": images or [], "error": error}


@pytest.mark.parametrize(
    ("saved", "now", "expected"),
    [
        pytest.param(brief("accuracy: 0.93\n"), brief("accuracy: 0.93\n"), (), id="same"),
        pytest.param(
            brief("loss 0.5012 after 10 epochs\n"),
            brief("loss 0.5031 after 10 epochs  \n"),
            (),
            id="numbers-within-tolerance",
        ),
        pytest.param(
            brief("<Model object at 0x7f3a2b1c9d00>"),
            brief("<Model object at 0x7f99aa001122>"),
            (),
            id="memory-addresses",
        ),
        pytest.param(
            brief("epoch 1\ntest accuracy: 0.93\n"),
            brief("epoch 1\ntest accuracy: 0.41\n"),
            ((2, "text", "test accuracy: 0.93", "test accuracy: 0.41"),),
            id="a-model-training-to-low-accuracy",
        ),
        pytest.param(
            brief("Lyon 1200\n"),
            brief("Lille 1200\n"),
            ((2, "text", "Lyon 1200", "Lille 1200"),),
            id="words",
        ),
        pytest.param(
            brief(images=[["image/png", 640, 480]]),
            brief(images=[["image/png", 650, 470]]),
            (),
            id="image-about-the-same-size",
        ),
        pytest.param(
            brief(images=[["image/png", 640, 480]]),
            brief(images=[]),
            ((2, "image", "image/png 640x480", "none"),),
            id="image-gone",
        ),
        pytest.param(
            brief(images=[["image/png", 640, 480]]),
            brief(images=[["image/png", 320, 480]]),
            ((2, "image", "image/png 640x480", "image/png 320x480"),),
            id="image-of-another-size",
        ),
        pytest.param(
            brief(images=[["image/png", 640, 480]]),
            brief(images=[["image/png", 1280, 960]]),
            (),
            id="the-same-plot-at-another-dpi",
        ),
        pytest.param(
            brief("array([0. , 1.5, 2. ])\n"),
            brief("array([ 0. ,  1.5,  2. ])\n"),
            (),
            id="numpy-padding",
        ),
        pytest.param(
            brief("array([0. , 1.5, 2. ])\n"),
            brief("array([0. , 1.5, 9. ])\n"),
            ((2, "text", "array([0. , 1.5, 2. ])", "array([0. , 1.5, 9. ])"),),
            id="numpy-another-number",
        ),
        pytest.param(brief("x - 1 = -0.50\n"), brief("x -1 = - 0.5\n"), (), id="signs-and-spaces"),
        pytest.param(
            brief("delta -0.50\n"),
            brief("delta 0.50\n"),
            ((2, "text", "delta -0.50", "delta 0.50"),),
            id="a-sign-flip",
        ),
        pytest.param(
            brief(error="KeyError"),
            brief(),
            ((2, "error", "KeyError", "none"),),
            id="error-by-type",
        ),
    ],
)
def test_output_drift(saved: dict, now: dict, expected: tuple) -> None:
    assert output_drift([{"cell": 2, "stored": saved, "now": now}]) == expected


def test_the_report_shows_saved_and_now_side_by_side() -> None:
    table = drift_table([(4, "text", "accuracy: 0.93", "accuracy: 0.41")])
    assert table.splitlines()[0].split() == ["cell", "what", "saved", "now"]
    assert table.splitlines()[2].split() == ["4", "text", "accuracy:", "0.93", "accuracy:", "0.41"]
