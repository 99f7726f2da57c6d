"""What a killed local hub leaves in Docker (its learners' containers, its network) is removed by
the next one: everything it makes carries its owner, `<host>:<pid>` (local_hub/processes.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from typing import Any

import pytest

from local_hub import firewall
from local_hub.config import INSTANCE_LABEL, OWNER_LABEL
from local_hub.processes import orphaned, owner, remove_orphans, remove_stale_rules

HOST = "builder"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({OWNER_LABEL: f"{HOST}:100"}, True, id="its-process-is-gone"),
        pytest.param({OWNER_LABEL: f"{HOST}:200"}, False, id="its-process-runs"),
        pytest.param({OWNER_LABEL: "elsewhere:100"}, False, id="another-hosts"),
        pytest.param({OWNER_LABEL: "garbage"}, False, id="an-owner-that-is-no-pid"),
        pytest.param({INSTANCE_LABEL: "abc"}, False, id="no-owner"),
    ],
)
def test_orphaned(labels: dict[str, str], expected: bool) -> None:
    assert orphaned(labels, HOST, alive=lambda pid: pid == 200) is expected


def finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_next_hub_removes_what_a_killed_one_left(client: Any) -> None:
    """Real Docker: a network and a container of a dead owner go, a living owner's stay."""
    name = f"olhub-orphan-test-{uuid.uuid4().hex[:8]}"
    dead = {INSTANCE_LABEL: "dead", OWNER_LABEL: f"{socket.gethostname()}:{finished_pid()}"}
    living = {INSTANCE_LABEL: "living", OWNER_LABEL: owner()}
    made = [
        client.networks.create(f"{name}-dead", labels=dead),
        client.networks.create(f"{name}-living", labels=living),
        client.containers.create("debian:bookworm-slim", ["true"], name=f"{name}-c", labels=dead),
    ]
    try:
        removed = remove_orphans(client)
        assert {f"{name}-dead", f"{name}-c"} <= set(removed)
        assert f"{name}-living" not in removed
        names = {n.name for n in client.networks.list(filters={"label": OWNER_LABEL})}
        assert f"{name}-living" in names and f"{name}-dead" not in names
    finally:
        for item in made:
            try:
                item.remove(force=True) if hasattr(item, "start") else item.remove()
            except Exception:  # noqa: BLE001 - removed by the test already
                pass


LISTING = """\
-P INPUT ACCEPT
-A INPUT -i br-aaaaaaaaaaaa -m comment --comment olhub-1 -j DROP
-A INPUT -i eth0 -m comment --comment "someone else's" -j ACCEPT
-A DOCKER-USER -d 10.0.0.0/8 -i br-bbbbbbbbbbbb -m comment --comment olhub-2 -j DROP
-A DOCKER-USER -j RETURN
"""


def test_the_firewall_rules_of_local_hubs_are_read_back_by_their_tag() -> None:
    assert firewall.tagged_rules(LISTING, "olhub-2") == [
        ["DOCKER-USER", "-d", "10.0.0.0/8", "-i", "br-bbbbbbbbbbbb"]
        + ["-m", "comment", "--comment", "olhub-2", "-j", "DROP"]
    ]
    assert firewall.rule_tags(firewall.tagged_rules(LISTING)) == {"olhub-1", "olhub-2"}


def test_the_next_hub_removes_the_firewall_rules_a_killed_one_left(client: Any) -> None:
    """Real iptables (as root): the rules of a network that is gone go, a living network's stay,
    and each rule is the one `guard` added, as iptables lists it."""
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        pytest.skip("the local hub's firewall rules need root and iptables")
    name = f"olhub-rules-test-{uuid.uuid4().hex[:8]}"
    living = client.networks.create(name, labels={INSTANCE_LABEL: "living"})
    gone = f"{name}-gone"
    try:
        bridge = f"br-{living.id[:12]}"
        assert firewall.guard(bridge, 8081, name) and firewall.guard("br-0123456789ab", 8081, gone)
        expected = firewall.guard_rules(bridge, 8081, name)
        assert sorted(firewall.tagged_rules(firewall.listing(), name)) == sorted(expected)
        removed = remove_stale_rules(client)
        assert f"the firewall rules of {gone}" in removed
        assert f"the firewall rules of {name}" not in removed
        assert firewall.tagged_rules(firewall.listing(), gone) == []
        assert sorted(firewall.tagged_rules(firewall.listing(), name)) == sorted(expected)
    finally:
        firewall.unguard([name, gone])
        living.remove()
