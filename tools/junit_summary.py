"""One line for a whole `./pants test` run: passed, failed and skipped tests, from its JUnit XML.

    python3 tools/junit_summary.py [dist/test/reports]

Pants writes one JUnit file per test target (`[test].report` in pants.toml); this adds them up
and prints `tests: N passed, N failed, N skipped`. It exits non-zero when a test failed or errored,
when there is no test at all, or, with `CI` set, when any test was skipped: CI installs every tool
and service the tests need, so a skip there is a test that never ran. Standard library only, so
that `.ci/run` can call it with any Python 3.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REPORTS = Path("dist/test/reports")


@dataclass(frozen=True)
class Totals:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped
        )

    def line(self) -> str:
        return f"tests: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def totals_of(xml_text: str) -> Totals:
    """The totals of one JUnit document (a <testsuite> or a <testsuites> of them)."""
    root = ET.fromstring(xml_text)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = Totals()
    for suite in suites:
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        total += Totals(tests - failed - skipped, failed, skipped)
    return total


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DEFAULT_REPORTS
    total = Totals()
    for path in sorted(folder.rglob("*.xml")):
        total += totals_of(path.read_text(encoding="utf-8"))
    print(total.line())
    if total.failed or not total.passed:
        return 1
    if total.skipped and os.environ.get("CI"):
        print("tests: with CI set, skipped tests are failures (a tool or service is missing)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
