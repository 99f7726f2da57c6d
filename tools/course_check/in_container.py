"""Runs one notebook with nbclient and reports how it went. Runs INSIDE the course image.

    python3 -c "$(cat in_container.py)" NOTEBOOK [DEADLINE_SECONDS]

It uses only what the image has (the standard library, nbformat, nbclient, ipykernel), so the
notebook runs exactly as it will for learners: the image's kernel and packages, the notebook's
folder as the working directory. DEADLINE_SECONDS is a backstop should the host that watches the
container die: the runner exits then, which stops the container. The host side (smoke.py) passes this file's text with
`python3 -c`, and the benchmark runs the same file on the host.

Output: progress and the result as lines starting with MARKER, each followed by JSON:
`{"event": "cell", "cell": N}` before each code cell runs, then one
`{"event": "result", "status": ..., ...}`; a failed notebook's result names its first failing
cell and lists every one (`failures`: every cell runs, as with `allow_errors`); `outputs` holds,
per code cell that was saved with outputs, a brief of those and of what ran now (text, image
sizes, error), which the host compares (drift.py). The memory figures come from the cgroup
(v1 `memory.max_usage_in_bytes`, v2 `memory.peak`); an OOM kill is read from its counters
(v1 `memory.oom_control`, v2 `memory.events`); on the host (SMOKE_TEST_ON_HOST=1) the peak is the
largest process's and no OOM kill is read. Exit status: 0 passed, 1 failed, 3 missing.
"""

import json
import os
import sys
import threading
import time

MARKER = "@@course-smoke@@"
CGROUP = "/sys/fs/cgroup"
#: Run by the host adapter (on_host.py) with the machine's Python, outside any container.
ON_HOST = os.environ.get("SMOKE_TEST_ON_HOST") == "1"


def emit(**event):
    sys.stdout.write(MARKER + json.dumps(event) + "\n")
    sys.stdout.flush()


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def peak_memory():
    if ON_HOST:  # no cgroup of its own: the largest process, the kernel once it has exited
        import resource

        usage = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return max(u.ru_maxrss for u in usage) * 1024
    for name in ("memory/memory.max_usage_in_bytes", "memory.peak"):
        text = _read(os.path.join(CGROUP, name))
        if text and text.strip().isdigit():
            return int(text.strip())
    return None


def oom_kills():
    if ON_HOST:  # the machine's counters count other processes' kills
        return 0
    for name in ("memory/memory.oom_control", "memory.events"):
        text = _read(os.path.join(CGROUP, name))
        if text:
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
    return 0


def _png_size(data):
    """(width, height) of a base64 PNG, from its header; None if it is not one."""
    import base64

    try:
        head = base64.b64decode("".join(data)[:64])
    except ValueError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def output_summary(cell):
    """What a code cell shows, in brief: its text, its images (type and size), its error."""
    texts, images, error = [], [], None
    for output in cell.get("outputs", ()):
        kind = output.get("output_type")
        if kind == "stream":
            texts.append("".join(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            for mime in sorted(data):
                if mime.startswith("image/"):
                    size = _png_size(data[mime]) if mime == "image/png" else None
                    images.append([mime, *(size or (None, None))])
            if "text/plain" in data and not any(m.startswith("image/") for m in data):
                texts.append("".join(data["text/plain"]))
        elif kind == "error":
            error = output.get("ename")
    return {"text": "".join(texts)[-4000:], "images": images, "error": error}


def cell_failures(notebook):
    """Every code cell whose outputs hold an error, unless tagged `raises-exception`: its 1-based
    position among all cells, the exception's name and message, and (first only) the traceback."""
    failures = []
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", ()):
            continue
        for output in cell.get("outputs", ()):
            if output.get("output_type") == "error":
                failures.append(
                    {
                        "cell": index,
                        "exception": output.get("ename", ""),
                        "message": str(output.get("evalue", "")),
                        "traceback": "\n".join(output.get("traceback", ()))[-4000:],
                    }
                )
                break
    return failures


def main(argv):
    path = argv[1]
    if len(argv) > 2:
        watchdog = threading.Timer(float(argv[2]), os._exit, args=(124,))
        watchdog.daemon = True
        watchdog.start()
    started = time.monotonic()
    if not os.path.isfile(path):
        notebooks = []
        for root, dirs, files in os.walk("."):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            notebooks += [os.path.join(root, f)[2:] for f in files if f.endswith(".ipynb")]
        found = ", ".join(sorted(notebooks)) or "none"
        emit(
            event="result",
            status="missing",
            message=f"not found in the image ({os.path.abspath(path)}); notebooks there: {found}",
        )
        return 3

    # nbformat imports jsonschema, which builds an IRI grammar (0.7 s) at import when the optional
    # rfc3987_syntax is installed (Jupyter images have it). Notebook validation never needs it,
    # and this process is only the harness: the notebook's own kernel is a separate process.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    # The outputs the authors saved with the notebook, to compare with what runs now.
    stored = [output_summary(c) if c.cell_type == "code" else None for c in notebook.cells]
    state = {"cell": None}

    def on_cell_execute(cell, cell_index, **kwargs):
        state["cell"] = cell_index + 1
        emit(event="cell", cell=cell_index + 1)

    directory = os.path.dirname(os.path.abspath(path))
    client = NotebookClient(
        notebook,
        timeout=None,  # the host kills the container at the course's timeout
        kernel_name="python3",
        resources={"metadata": {"path": directory}},
        on_cell_execute=on_cell_execute,
        # Every cell runs, so that every failing cell is reported (assignments with blanks fail
        # in several); cells tagged `raises-exception` fail on purpose and are not reported.
        allow_errors=True,
    )
    result: dict = {"event": "result", "status": "passed", "cell": None}
    try:
        client.execute()
        failures = cell_failures(notebook)
        if failures:
            first = failures[0]
            result.update(
                status="failed",
                cell=first["cell"],
                exception=first["exception"],
                message=first["message"],
                traceback=first.pop("traceback"),
                failures=[{k: v for k, v in f.items() if k != "traceback"} for f in failures],
            )
        result["outputs"] = [
            {"cell": index, "stored": before, "now": output_summary(cell)}
            for index, (before, cell) in enumerate(zip(stored, notebook.cells), start=1)
            if before and (before["text"] or before["images"] or before["error"])
        ]
    except DeadKernelError as e:
        result.update(status="kernel-died", cell=state["cell"], message=str(e))
    except Exception as e:  # the kernel would not start, a broken notebook...
        result.update(
            status="failed", cell=state["cell"], exception=type(e).__name__, message=str(e)
        )
    result.update(
        duration_seconds=round(time.monotonic() - started, 3),
        peak_memory_bytes=peak_memory(),
        oom_kills=oom_kills(),
    )
    if result["status"] == "kernel-died" and result["oom_kills"]:
        result["status"] = "out-of-memory"
    emit(**result)
    return 0 if result["status"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
