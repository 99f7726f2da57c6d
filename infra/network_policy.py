"""Whether the cluster enforces NetworkPolicies. Pure: data in, data out.

The release keeps the cloud metadata server (the node role's credentials) and the cluster's
private addresses from learners with NetworkPolicies alone, and an EKS cluster ignores them
unless the VPC CNI add-on's network policy agent is on (`enableNetworkPolicy` in the add-on's
configuration). The deploy reads that configuration (infra/program.py) and refuses a cluster
that does not enforce them, saying how to turn it on.
"""

from __future__ import annotations

import json

ADDON = "vpc-cni"
SETTING = "enableNetworkPolicy"


class NetworkPolicyNotEnforced(Exception):
    """The cluster would ignore the release's NetworkPolicies."""


def enforced(configuration_values: str | None) -> bool:
    """True when the VPC CNI add-on's configuration (JSON, as EKS returns it) turns the network
    policy agent on."""
    try:
        configuration = json.loads(configuration_values or "{}")
    except ValueError:
        return False
    return isinstance(configuration, dict) and str(configuration.get(SETTING)).lower() == "true"


def check_enforced(cluster: str, region: str, configuration_values: str | None) -> None:
    """Raises NetworkPolicyNotEnforced, with the command that fixes it, unless `enforced`."""
    if enforced(configuration_values):
        return
    raise NetworkPolicyNotEnforced(
        f"EKS cluster {cluster} does not enforce NetworkPolicies (the {ADDON} add-on's "
        f"configuration has no {SETTING}: true), so learners could reach the node's credentials "
        f"at the metadata server. Turn it on, then deploy again: aws eks update-addon "
        f"--region {region} --cluster-name {cluster} --addon-name {ADDON} "
        f'--configuration-values \'{{"{SETTING}": "true"}}\''
    )
