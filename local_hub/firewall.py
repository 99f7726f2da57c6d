"""What the local learners' network lets a learner's container reach, as production's NetworkPolicy
does for a learner's pod: the hub's API port of this machine and the internet, and no other
private address.

Docker's own rules see traffic that passes through the host (FORWARD), not traffic to it: a
container reaches every service the host binds on 0.0.0.0 through its network's gateway. So the
local hub adds, for its network's bridge (`br-<network id>`), tagged with the network's name:

- INPUT: replies to the host's own connections (the proxy's to the servers), the hub's port, then
  nothing else of this machine;
- DOCKER-USER (Docker's chain for rules of its users, first in FORWARD): no private address
  (RFC 1918, link-local: the cloud metadata server), as the chart's `privateIPs: false` and
  `cloudMetadataServer: false`. The internet stays reachable, as in production, where courses'
  notebooks download data.

iptables needs root; where this process is not root or has no iptables, `guard` says so and
changes nothing. Rules whose network is gone (a killed hub) are removed with the network.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable

from local_hub.config import NAME_PREFIX

#: Private and link-local ranges: a learner's container reaches none of them.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
INPUT = "INPUT"
FORWARD = "DOCKER-USER"


def guard_rules(bridge: str, hub_port: int, tag: str) -> list[list[str]]:
    """The rules, each `[chain, match..., -j, target]` in the words `iptables -S` lists it with,
    in the order they must apply."""

    def rule(chain: str, *match: str, target: str, to: str | None = None) -> list[str]:
        where = ["-d", to, "-i", bridge] if to else ["-i", bridge]
        return [chain, *where, *match, "-m", "comment", "--comment", tag, "-j", target]

    return [
        rule(INPUT, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", target="ACCEPT"),
        rule(INPUT, "-p", "tcp", "-m", "tcp", "--dport", str(hub_port), target="ACCEPT"),
        rule(INPUT, target="DROP"),
        *(rule(FORWARD, target="DROP", to=cidr) for cidr in PRIVATE_RANGES),
    ]


def tagged_rules(listing: str, tag: str | None = None) -> list[list[str]]:
    """The rules of `iptables -S` output tagged `tag` (any local hub's, `olhub-*`, where None),
    each as `[chain, match..., -j, target]` (what `iptables -D` takes)."""
    found = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if len(words) < 2 or words[0] != "-A" or "--comment" not in words:
            continue
        comment = words[words.index("--comment") + 1]
        if (comment == tag) if tag else comment.startswith(NAME_PREFIX):
            found.append(words[1:])
    return found


def rule_tags(rules: Iterable[list[str]]) -> set[str]:
    return {rule[rule.index("--comment") + 1] for rule in rules}


def _iptables() -> str | None:
    """iptables, where this process may use it (root)."""
    executable = shutil.which("iptables")
    return executable if executable and os.geteuid() == 0 else None


def _run(iptables: str, *args: str) -> str:
    return subprocess.run(
        [iptables, "-w", *args], check=True, capture_output=True, text=True
    ).stdout


def guard(bridge: str, hub_port: int, tag: str) -> bool:
    """Adds the rules for the network's bridge; False where this process cannot (not root, no
    iptables)."""
    iptables = _iptables()
    if iptables is None:
        return False
    positions: dict[str, int] = {}
    for chain, *rest in guard_rules(bridge, hub_port, tag):
        positions[chain] = positions.get(chain, 0) + 1
        _run(iptables, "-I", chain, str(positions[chain]), *rest)
    return True


def listing() -> str:
    """`iptables -S` of the chains the guard uses ("" where this process cannot read them)."""
    iptables = _iptables()
    if iptables is None:
        return ""
    return "".join(_run(iptables, "-S", chain) for chain in (INPUT, FORWARD))


def unguard(tags: Iterable[str]) -> None:
    """Removes every rule tagged with one of `tags`."""
    iptables = _iptables()
    wanted = set(tags)
    if iptables is None or not wanted:
        return
    for rule in tagged_rules(listing()):
        if rule_tags([rule]) <= wanted:
            _run(iptables, "-D", *rule)
