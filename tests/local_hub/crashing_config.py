"""A jupyterhub_config function that crashes JupyterHub once, natively (SIGSEGV), then configures
the local hub: for tests/local_hub/test_hub_crash.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from local_hub.config import configure_local


def configure_after_one_crash(c: Any, params_file: str) -> None:
    marker = Path(params_file).with_name("crashed-once")
    if not marker.exists():
        marker.write_text("")
        os.kill(os.getpid(), signal.SIGSEGV)
    configure_local(c, params_file)
