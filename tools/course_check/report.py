"""Rendering results: the terminal summary table, JSON and JUnit XML. Pure: strings from data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree

from tools.course_check.model import (
    CHECKS,
    CheckReport,
    NotebookResult,
    SmokeResult,
    Status,
    human_memory,
)

_JUNIT_FAILURE = {
    Status.FAILED: "failure",
    Status.TIMED_OUT: "failure",
    Status.OUT_OF_MEMORY: "failure",
    Status.MISSING: "failure",
    Status.NETWORK: "failure",
    Status.ERROR: "error",
}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _memory(result: NotebookResult) -> str:
    return "-" if result.peak_memory_bytes is None else f"{result.peak_memory_bytes / 1e6:.0f} MB"


def drift_table(drift: Sequence[tuple[int, str, str, str]]) -> str:
    """The drifted cells, saved and now side by side, indented under their notebook."""
    rows = [[str(c), w, a, b] for c, w, a, b in drift]
    table = _table(["cell", "what", "saved", "now"], rows, {0})
    return "\n".join(f"    {line}" for line in table.splitlines())


#: Why a course none of whose notebooks ran fails.
NOTHING_RAN = (
    "no notebook ran (smoke_test.skip or --notebook left out every one); a course passes only "
    "when its notebooks run"
)


def smoke_summary(results: Sequence[SmokeResult]) -> str:
    """The table printed after a smoke test, then one paragraph per notebook that did not pass."""
    rows = []
    for course in results:
        if course.error:
            rows.append([course.course, "-", Status.ERROR.value, "-", "-", "-"])
        for n in course.notebooks:
            rows.append(
                [
                    course.course,
                    n.path,
                    n.status.value,
                    f"{n.duration_seconds:.1f}",
                    _memory(n),
                    human_memory(course.memory_limit_bytes),
                ]
            )
    table = _table(
        ["course", "notebook", "result", "time (s)", "peak memory", "limit"], rows, {3, 4}
    )
    details = [f"{course.course}: {course.accelerator}" for course in results if course.accelerator]
    details += [
        f"{course.course}: {path}: not run (course.toml smoke_test.skip: {reason})"
        for course in results
        for path, reason in course.skipped
    ]
    for course in results:
        if course.error:
            details.append(f"{course.course}: {course.error}")
        elif not course.notebooks:
            details.append(f"{course.course}: failed: {NOTHING_RAN}")
        for n in course.notebooks:
            if not n.passed:
                details.append(f"{course.course}: {n.path}: {n.summary()}")
            if n.drift:
                details.append(
                    f"{course.course}: {n.path}: outputs that differ from the saved ones:"
                )
                details.append(drift_table(n.drift))
    passed = sum(r.passed for r in results)
    verdict = f"{passed} of {len(results)} course(s) passed"
    return "\n".join([table, "", *details, *([""] if details else []), verdict])


def check_summary(reports: Sequence[CheckReport], course_dirs: dict[str, str]) -> str:
    lines = []
    for report in reports:
        if report.passed:
            lines.append(f"course-check: {report.course}: passed")
        for finding in report.findings:
            lines.append(f"course-check: {finding.render(course_dirs.get(report.course, ''))}")
    passed = sum(r.passed for r in reports)
    lines.append(f"course-check: {passed} of {len(reports)} course(s) passed")
    return "\n".join(lines)


# --- JUnit XML ---------------------------------------------------------------------------------


def _xml(element: ElementTree.Element) -> str:
    ElementTree.indent(element)
    return ElementTree.tostring(element, encoding="unicode", xml_declaration=True) + "\n"


def smoke_junit(result: SmokeResult) -> str:
    """JUnit XML: one test suite per course, one test case per notebook."""
    failures = sum(1 for n in result.notebooks if _JUNIT_FAILURE.get(n.status) == "failure")
    failures += not result.error and not result.notebooks  # nothing ran: no pass to report
    errors = sum(1 for n in result.notebooks if n.status is Status.ERROR) + bool(result.error)
    suite = ElementTree.Element(
        "testsuite",
        name=f"smoke-test.{result.course}",
        tests=str(max(len(result.notebooks), 1)),
        failures=str(failures),
        errors=str(errors),
        time=f"{result.duration_seconds:.3f}",
    )
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (
        ("image", result.image),
        ("memory_limit", human_memory(result.memory_limit_bytes)),
        ("timeout_seconds", str(result.timeout_seconds)),
        (
            "network",
            (
                " ".join(result.network)
                if isinstance(result.network, tuple)
                else str(result.network).lower()
            ),
        ),
        *((("accelerator", result.accelerator),) if result.accelerator else ()),
        # Not <skipped> test cases: CI fails on any skipped test, and these are decided ones.
        *((f"not run: {path}", reason) for path, reason in result.skipped),
    ):
        ElementTree.SubElement(properties, "property", name=name, value=value)
    if result.error:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"courses.{result.course}", name="image", time="0"
        )
        ElementTree.SubElement(case, "error", type="error", message=result.error)
    elif not result.notebooks:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"courses.{result.course}", name="notebooks", time="0"
        )
        ElementTree.SubElement(case, "failure", type="failed", message=NOTHING_RAN)
    for n in result.notebooks:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"courses.{result.course}",
            name=n.path,
            time=f"{n.duration_seconds:.3f}",
        )
        if n.peak_memory_bytes is not None:
            props = ElementTree.SubElement(case, "properties")
            ElementTree.SubElement(
                props, "property", name="peak_memory_bytes", value=str(n.peak_memory_bytes)
            )
        kind = _JUNIT_FAILURE.get(n.status)
        if kind:
            element = ElementTree.SubElement(case, kind, type=n.status.value, message=n.summary())
            element.text = n.log_tail
        if n.drift:  # a warning unless strict (then the failure above says so too)
            out = ElementTree.SubElement(case, "system-out")
            out.text = "outputs that differ from the saved ones:\n" + drift_table(n.drift)
    return _xml(suite)


def check_junit(report: CheckReport) -> str:
    """JUnit XML: one test case per static check, failing with its findings."""
    suite = ElementTree.Element(
        "testsuite",
        name=f"course-check.{report.course}",
        tests=str(len(CHECKS)),
        failures=str(len({f.check for f in report.findings})),
        errors="0",
    )
    for check in CHECKS:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"courses.{report.course}", name=check, time="0"
        )
        findings = [f for f in report.findings if f.check == check]
        if findings:
            failure = ElementTree.SubElement(
                case, "failure", type=check, message=findings[0].render()
            )
            failure.text = "\n".join(f.render() for f in findings)
    return _xml(suite)


def to_json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"
