"""tools/lock.py: reading pip-compile's output, layering it, and the header that ties a lock to
its requirements. Plain text in and out."""

from __future__ import annotations

from tools.lock import freeze_versions, parse_lock, render_lock

H1, H2, H3 = ("1" * 64, "2" * 64, "3" * 64)
COMPILED = f"""numpy==2.4.6 \\
    --hash=sha256:{H1}
    # via
    #   pandas
    #   tabulate
Tabulate==0.9.0 \\
    --hash=sha256:{H2} \\
    --hash=sha256:{H3}
    # via -r requirements.in
"""


def test_pins_keep_every_hash_and_their_annotations() -> None:
    lock = parse_lock(COMPILED)
    assert lock.versions() == {"numpy": "2.4.6", "tabulate": "0.9.0"}
    assert lock.pins["tabulate"].hashes == (H2, H3)
    assert lock.pins["numpy"].block.endswith("#   tabulate")
    assert lock.input_digest is None


def test_a_layer_lock_leaves_out_what_is_installed_below_at_that_version() -> None:
    text = render_lock(
        ["a layer"], "requirements.txt", "tabulate==0.9.0\n", COMPILED, {"NumPy": "2.4.6"}
    )
    lock = parse_lock(text)
    assert lock.versions() == {"tabulate": "0.9.0"}
    assert text.startswith("# a layer\n# input: requirements.txt sha256:")
    assert lock.matches("tabulate==0.9.0\n") and not lock.matches("tabulate==0.9.1\n")
    # Another version below is not the same package: the layer keeps its pin.
    assert "numpy" in parse_lock(render_lock([], "r", "", COMPILED, {"numpy": "1.26.4"})).pins


def test_freeze_output_is_normalized() -> None:
    text = "Jupyter_Core==5.9.1\nruamel.yaml==0.18.6\n# comment\nsomething @ file:///x\n"
    assert freeze_versions(text) == {"jupyter-core": "5.9.1", "ruamel-yaml": "0.18.6"}
