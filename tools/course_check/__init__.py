"""The course quality gate: static checks, smoke tests in the real image, the publish gate.

Pure logic over plain data (model, static, notebook_code, dependencies, report, gate) is kept
apart from the Docker adapter (smoke, inventory) and from the command-line tools: `*_cli.py`
(`check_cli`: `tools:course-check`, `smoke_cli`: `tools:smoke-test`) and cli_common.
"""
