"""Every test under tests/: with `CI` set, a skip is a failure.

Tests skip with a reason when a tool or service they need is missing (Docker, the registry,
PostgreSQL, Prometheus, Chromium, configurable-http-proxy, ../shared/reference/). On a developer's
machine that is a fair answer; in CI (`.ci/run` installs all of them) a skip would hide a test
that never ran, so it is reported as a failure that keeps the skip's reason.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


def skips_fail() -> bool:
    return bool(os.environ.get("CI"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and skips_fail() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and with CI set a skip is a failure: {reason}"
