"""A JupyterHub that exits (a native crash) while it starts is started again, as Kubernetes restarts
the hub's pod (local_hub/processes.py); its log keeps the crash. Real JupyterHub and
configurable-http-proxy on loopback; nothing spawns."""

from __future__ import annotations

from pathlib import Path

from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from local_hub.processes import LocalHub
from tests.hub.e2e_support import require_proxy
from tests.hub.hub_data import CATALOG, IMAGE_MAP


def test_a_hub_that_crashed_while_starting_is_started_again(tmp_path: Path) -> None:
    require_proxy()
    settings = HubSettings(CATALOG, IMAGE_MAP, LaunchSettings(), CullSettings(enabled=False))
    hub = LocalHub(
        settings,
        tmp_path,
        configuration="tests.local_hub.crashing_config:configure_after_one_crash",
        learner_network=False,
    )
    with hub:
        assert hub.api("GET", "/").status_code == 200
    log = hub.hub_log.read_text()
    assert "Fatal Python error: Segmentation fault" in log  # the faulthandler's traceback
    assert "local hub: JupyterHub exited (" in log
    assert log.count("Running JupyterHub version") == 1  # the crash came before it
