"""Prometheus alert rules, built from the same query builders as the dashboards' panels.

Per-course alerts carry a `course` label (the pod's course label, see `dashboards.common`).
Annotations use only `{{ $labels.* }}` templates, so their text is predictable in tests.
"""

from __future__ import annotations

from typing import Any

import yaml

from dashboards import courses, hub
from dashboards.common import DEFAULTS, Settings, rules_scope

GROUP = "course-notebooks"


def _rule(
    name: str, expr: str, duration: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def alert_rules(settings: Settings = DEFAULTS) -> list[dict[str, Any]]:
    s, scope = settings, rules_scope(settings)
    course = "{{ $labels.course }}"
    rules = [
        _rule(
            "CourseServerOOMKilled",
            f"{courses.oom_kills(scope, s)} > 0",
            "0m",
            "warning",
            f"A learner server of course {course} was OOM-killed",
            f"A notebook container of course {course} restarted after running out of memory "
            f"in the last {s.alert_window}. If it repeats, raise resources.memory_limit in "
            f"courses/{course}/course.toml (Courses dashboard, memory panels).",
        ),
        _rule(
            "SpawnFailureRatioHigh",
            f"{hub.spawn_failure_ratio(s.alert_window, s)} > {s.spawn_failure_ratio:g}",
            "5m",
            "critical",
            "Learners cannot start their servers",
            f"More than {s.spawn_failure_ratio:.0%} of server spawns failed over the last "
            f"{s.alert_window}. Read the hub's log and the Hub dashboard's spawn panels; check "
            "image pulls and node capacity.",
        ),
        _rule(
            "CourseImagePullBackOff",
            f"{courses.waiting_pods(scope, s, courses.IMAGE_PULL_REASONS)} > 0",
            "5m",
            "critical",
            f"Servers of course {course} cannot pull the course image",
            f"Pods of course {course} have been waiting on their image for 5 minutes "
            "(ErrImagePull or ImagePullBackOff). Check that the course's image tag exists in "
            "the registry and that nodes can reach the registry.",
        ),
        _rule(
            "CourseServersUnschedulable",
            f"{courses.unschedulable_pods(scope, s)} > 0",
            courses.UNSCHEDULABLE_FOR,
            "warning",
            f"Servers of course {course} wait for a node",
            f"Pods of course {course} have been Pending and unschedulable for "
            f"{courses.UNSCHEDULABLE_FOR}: no node has room for them (for a GPU course, no GPU "
            "node is free and none is being added). Run `kubectl describe pod` on one of them "
            "for the scheduler's reason; check the cluster autoscaler's events and the node "
            "group's maximum size and quota (Courses dashboard, 'Pods waiting for a node').",
        ),
        _rule(
            "KeptWorkNearQuota",
            f"{courses.kept_quota_use(s)} > {s.kept_work_quota_share:g}",
            "15m",
            "warning",
            "Kept work's storage is nearly at its quota",
            f"Learners' kept-work claims request more than {s.kept_work_quota_share:.0%} of the "
            "stack's quota (ResourceQuota kept-work): once it is full, new people's claims are "
            "refused and their launches fail. Raise keepWork.quota, shorten keepWork.days, or "
            "lower courses' [kept_work] size (Courses dashboard, Kept work).",
        ),
        _rule(
            "HubDown",
            f"({hub.hub_up(s)} == 0) or absent({hub.hub_up(s)})",
            "5m",
            "critical",
            "The JupyterHub hub is down or not scraped",
            f"Prometheus has not scraped the hub (job {s.hub_job}, namespace {s.namespace}) for "
            "5 minutes: learners cannot log in or start servers. Check the hub pod's events "
            "and logs.",
        ),
    ]
    if not s.culler_max_age_seconds:  # the culler has no age limit: no server is too old
        return rules
    return rules + [
        _rule(
            "CourseServerPastMaxAge",
            courses.servers_past_max_age(scope, s, s.max_age_threshold_seconds) + " > 0",
            "5m",
            "warning",
            f"Servers of course {course} outlived the culler's maximum age",
            f"Servers of course {course} are older than the idle culler's maximum age "
            f"({s.culler_max_age_seconds} s) plus {s.culler_slack_seconds} s: the culler has "
            "stopped working. Check the hub's culler service and its logs.",
        ),
    ]


def rules_document(settings: Settings) -> dict[str, Any]:
    """`{"groups": [...]}`: a Prometheus rules file, and the `spec` of a PrometheusRule. No
    default settings: the deployment's own (culler max age, namespace) must be passed."""
    return {"groups": [{"name": GROUP, "rules": alert_rules(settings)}]}


def rules_yaml(settings: Settings) -> str:
    """The rules file, as Prometheus' `rule_files` (and `promtool check rules`) read it."""
    header = "# Generated by `python -m dashboards.build`; edit dashboards/alerts.py instead.\n"
    body = yaml.safe_dump(rules_document(settings), sort_keys=False, width=1_000_000)
    return header + body
