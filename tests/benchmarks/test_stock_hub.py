"""The benchmarks' baseline (benchmarks/stock_hub.py): stock JupyterHub parts launching the
container our launcher would start. Its configuration (pure), and the finding behind hub.auth,
on a running stock hub (JupyterHub and configurable-http-proxy on loopback; nothing spawns)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

from traitlets.config import Config

from benchmarks.stock_hub import configure_stock, stock_hub
from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from tests.hub.e2e_support import redirects_to_spawn, require_proxy
from tests.hub.hub_data import CATALOG, IMAGE_MAP, local_hub_params_file


def test_the_baseline_is_stock_jupyterhub_with_our_container(tmp_path: Path) -> None:
    c = Config()
    configure_stock(c, local_hub_params_file(tmp_path, stock_course="intro-ml"))
    assert c.JupyterHub.authenticator_class == "tmpauthenticator.TmpAuthenticator"
    assert c.JupyterHub.spawner_class == "local_hub.spawner.LoopbackDockerSpawner"
    assert c.DockerSpawner.image == IMAGE_MAP["intro-ml"]
    assert c.DockerSpawner.mem_limit == CATALOG["intro-ml"].resources.memory_limit
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert [s["name"] for s in c.JupyterHub.services] == ["ol-local"]


def test_stock_tmpauthenticator_keeps_the_query_too(tmp_path: Path) -> None:
    """The finding behind hub.auth: with JupyterHub 6.1 the stock TmpAuthenticator's redirect
    already keeps the query (JupyterHub appends it to the post-login URL); ours makes it
    explicit and `opt-` prefixed (tests/hub/test_e2e_hub.py)."""
    require_proxy()
    settings = HubSettings(CATALOG, IMAGE_MAP, LaunchSettings(), CullSettings())
    with stock_hub(settings, tmp_path, "intro-ml", learner_network=False) as stock:
        hops = redirects_to_spawn(stock.link("intro-ml", "a/b.ipynb"))
        assert not stock.containers()
    assert urlparse(hops[-1]).path == "/hub/spawn"
    assert parse_qs(urlparse(hops[-1]).query) == {"course": ["intro-ml"], "notebook": ["a/b.ipynb"]}
