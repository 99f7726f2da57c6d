"""Static checks of courses: metadata, notebooks, imports, data paths, file sizes, pins.

    ./pants run tools:course-check -- [COURSE ...]      (slugs or directories; default: all)

Prints each finding as `file: cell N: [check] message`, writes `<slug>.course-check.json` and
`.xml` (JUnit) to --output-dir, and exits 1 when any course has a finding. Pants runs the same
code per course as the test target `courses/<slug>#check`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tools.course_check.cli_common import (
    add_output_arguments,
    course_directories,
    results_line,
    write_outputs,
)
from tools.course_check.report import check_junit, check_summary, to_json
from tools.course_check.static import check_course


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("courses", nargs="*", help="course slugs or directories (default: all)")
    add_output_arguments(parser, Path("dist/course-check"))
    args = parser.parse_args(argv)
    directories = course_directories(args.courses)
    reports = []
    for directory in directories:
        report = check_course(directory)
        reports.append(report)
        write_outputs(
            args.output_dir,
            {
                f"{report.course}.course-check.json": to_json(report.to_dict()),
                f"{report.course}.course-check.xml": check_junit(report),
            },
        )
    names = {d.name: str(d) for d in directories}
    print(check_summary(reports, names))
    print(results_line("course-check", args))
    return 0 if all(r.passed for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
