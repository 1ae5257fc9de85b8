"""Readiness assessment (pure): what counts as ready, and how what is not is explained."""

from __future__ import annotations

from k8s_objects import daemonset, deployment, event, job, job_pod, pod

from jupiter.k8s import readiness

TASK = {"app.kubernetes.io/instance": "jupiter-circe", "jupiter.io/task": "tokenize"}


def test_ready_deployment_with_ready_pod() -> None:
    result = readiness.assess([deployment("tokenize")], [pod("tokenize-1", TASK)])
    assert result.done and result.ready == ["Deployment tokenize"]


def test_running_is_not_ready_when_the_readiness_probe_fails() -> None:
    result = readiness.assess([deployment("tokenize", ready=0)],
                              [pod("tokenize-1", TASK, ready=False)])
    assert not result.done
    (nr,) = result.not_ready
    text = nr.describe()
    assert "0/1 replicas ready" in text
    assert "pod tokenize-1: container task running but not ready: readiness probe (/ready)" in text
    assert nr.pods == ["tokenize-1"] and not nr.fatal


def test_image_pull_backoff_is_named_with_its_message() -> None:
    result = readiness.assess(
        [deployment("tokenize", ready=0)],
        [pod("tokenize-1", TASK, ready=False, phase="Pending",
             waiting=("ImagePullBackOff", 'Back-off pulling image "reg/x:1"'))])
    assert 'container task waiting: ImagePullBackOff: Back-off pulling image "reg/x:1"' in \
        result.not_ready[0].describe()
    assert not result.fatal  # may resolve (image pushed late): waited for until the timeout


def test_invalid_image_name_is_fatal() -> None:
    result = readiness.assess([deployment("tokenize", ready=0)],
                              [pod("tokenize-1", TASK, ready=False,
                                   waiting=("InvalidImageName", "bad ref"))])
    assert result.fatal and result.fatal[0].name == "tokenize"


def test_crash_loop_reports_restarts_and_exit_code() -> None:
    result = readiness.assess(
        [deployment("tokenize", ready=0)],
        [pod("tokenize-1", TASK, ready=False, waiting=("CrashLoopBackOff", "back-off 40s"),
             restarts=4, last_exit=2)])
    text = result.not_ready[0].describe()
    assert "CrashLoopBackOff" in text and "restarted 4x, last exit code 2 (Error)" in text


def test_unschedulable_pod_says_why() -> None:
    msg = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    result = readiness.assess([deployment("tokenize", ready=0)],
                              [pod("tokenize-1", TASK, ready=False, unschedulable=msg)])
    assert f"not scheduled (Unschedulable): {msg}" in result.not_ready[0].describe()


def test_startup_probe_not_passed_yet() -> None:
    result = readiness.assess([deployment("tokenize", ready=0)],
                              [pod("tokenize-1", TASK, ready=False, started=False)])
    assert "startup probe (/healthz) not passed" in result.not_ready[0].describe()


def test_rollout_in_progress_is_not_ready() -> None:
    stale = deployment("tokenize", generation=2, observed=1)
    old_left = deployment("tokenize", replicas=1, total=2, ready=1)
    not_updated = deployment("tokenize", ready=1, updated=0)
    for dep, phrase in ((stale, "has not observed the latest spec"),
                        (old_left, "1 old replica(s) still running"),
                        (not_updated, "0/1 replicas updated")):
        result = readiness.assess([dep], [pod("tokenize-1", TASK)])
        assert not result.done and phrase in result.not_ready[0].describe()


def test_progress_deadline_exceeded_is_fatal() -> None:
    dep = deployment("tokenize", ready=0, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "tokenize-7f" has timed out progressing.'}])
    result = readiness.assess([dep], [])
    assert result.fatal and "rollout stuck" in result.fatal[0].describe()


def test_daemonset_pinned_to_a_missing_hostname_is_not_ready() -> None:
    result = readiness.assess([daemonset("agent-edge1", desired=0, ready=0, hostname="edge-1")],
                              [])
    text = result.not_ready[0].describe()
    assert "scheduled on 0 node(s), expected 1" in text
    assert "kubernetes.io/hostname=edge-1" in text


def test_daemonset_without_expectation_still_needs_a_node() -> None:
    result = readiness.assess([daemonset("x", desired=0, ready=0, expected=None,
                                        hostname=None)], [])
    assert "no node matches" in result.not_ready[0].describe()


def test_daemonset_ready() -> None:
    labels = {"app.kubernetes.io/instance": "jupiter-drupe", "jupiter.io/node": "agent-edge1"}
    result = readiness.assess([daemonset("agent-edge1")], [pod("agent-edge1-x", labels)])
    assert result.done


def test_daemonset_pods_not_ready() -> None:
    labels = {"app.kubernetes.io/instance": "jupiter-drupe", "jupiter.io/node": "agent-edge1"}
    result = readiness.assess([daemonset("agent-edge1", ready=0)],
                              [pod("agent-edge1-x", labels, ready=False)])
    assert "0/1 pods updated" in result.not_ready[0].describe()


def test_no_workloads_is_not_done() -> None:
    result = readiness.assess([], [])
    assert not result.done and result.workloads == 0


def test_pods_of_other_workloads_or_being_deleted_are_ignored() -> None:
    other = pod("report-1", {**TASK, "jupiter.io/task": "report"}, ready=False)
    deleting = pod("tokenize-old", TASK, ready=False)
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    result = readiness.assess([deployment("tokenize")],
                              [pod("tokenize-1", TASK), other, deleting])
    assert result.done


def test_selector_match_expressions() -> None:
    sel = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                {"key": "gone", "operator": "DoesNotExist"},
                                {"key": "x", "operator": "Exists"},
                                {"key": "y", "operator": "NotIn", "values": ["no"]}]}
    assert readiness.selects(sel, {"tier": "a", "x": "1", "y": "yes"})
    assert not readiness.selects(sel, {"tier": "c", "x": "1"})
    assert not readiness.selects(sel, {"tier": "a", "x": "1", "gone": "here"})
    assert not readiness.selects({}, {"a": "b"})  # an empty selector selects nothing here


def test_event_lines_keep_the_latest_in_order() -> None:
    events = [event("Pod", "p", "Failed", "pull failed", "2025-01-01T00:00:03Z", count=3),
              event("Pod", "p", "Scheduled", "assigned", "2025-01-01T00:00:01Z", type_="Normal"),
              event("Pod", "p", "Pulling", "pulling", "2025-01-01T00:00:02Z", type_="Normal"),
              event("Pod", "p", "BackOff", "back-off", "2025-01-01T00:00:04Z")]
    assert readiness.event_lines(events, limit=2) == ["Warning Failed: pull failed (x3)",
                                                      "Warning BackOff: back-off"]


# ---- Jobs (the DRUPE execution profiler) ------------------------------------------------

DONE = {"terminated": {"exitCode": 0, "reason": "Completed"}}
CRASH = {"terminated": {"exitCode": 1, "reason": "Error", "message": "task raised"}}


def test_succeeded_job_is_ready_and_its_pods_do_not_matter() -> None:
    result = readiness.assess([job("exec-edge1", succeeded=1)],
                              [job_pod("exec-edge1-a", "exec-edge1", phase="Failed",
                                       init=DONE, main=CRASH)])  # a retried attempt
    assert result.done and result.ready == ["Job exec-edge1"]


def test_running_job_is_progress_not_a_failing_probe() -> None:
    result = readiness.assess(
        [job("exec-edge1", active=1)],
        [job_pod("exec-edge1-a", "exec-edge1", phase="Pending", init={"running": {}},
                 main={"waiting": {"reason": "PodInitializing"}})])
    (nr,) = result.not_ready
    text = nr.describe()
    assert "0/1 succeeded, 1 active, 0 failed (attempts allowed: 2)" in text
    assert "pod exec-edge1-a (Pending): container wait-home running" in text
    assert "readiness probe" not in text
    assert not nr.fatal and nr.logs == [("exec-edge1-a", "wait-home")]


def test_failed_job_is_fatal_naming_the_pod_exit_code_and_log_container() -> None:
    result = readiness.assess(
        [job("exec-edge1", failed=2, condition=("Failed", "BackoffLimitExceeded",
                                                "Job has reached the specified backoff limit"))],
        [job_pod("exec-edge1-a", "exec-edge1", phase="Failed", init=DONE, main=CRASH),
         job_pod("other-a", "other", phase="Failed", init=DONE, main=CRASH)])
    (nr,) = result.fatal
    text = nr.describe()
    assert "failed: BackoffLimitExceeded: Job has reached the specified backoff limit" in text
    assert "pod exec-edge1-a (Failed): container exec terminated: Error (exit code 1): " \
           "task raised" in text
    assert "wait-home" not in text  # the init container finished fine
    assert nr.pods == ["exec-edge1-a"] and nr.logs == [("exec-edge1-a", "exec")]


def test_more_failures_than_the_backoff_limit_is_fatal_before_the_condition() -> None:
    result = readiness.assess([job("exec-edge1", failed=2, backoff_limit=1)], [])
    assert result.fatal and "2 pod(s) failed, backoffLimit 1" in result.fatal[0].describe()


def test_a_failed_attempt_with_retries_left_is_waited_for() -> None:
    result = readiness.assess(
        [job("exec-edge1", failed=1, active=1, backoff_limit=1)],
        [job_pod("exec-edge1-a", "exec-edge1", phase="Failed", init=DONE, main=CRASH),
         job_pod("exec-edge1-b", "exec-edge1", init={"running": {}})])
    (nr,) = result.not_ready
    assert not nr.fatal
    assert nr.logs == [("exec-edge1-a", "exec"), ("exec-edge1-b", "wait-home")]


def test_job_pod_with_an_invalid_image_is_fatal() -> None:
    result = readiness.assess(
        [job("exec-edge1", active=1)],
        [job_pod("exec-edge1-a", "exec-edge1", phase="Pending",
                 init={"waiting": {"reason": "InvalidImageName", "message": "bad ref"}})])
    assert result.fatal
    assert "container wait-home waiting: InvalidImageName: bad ref" in \
        result.fatal[0].describe()
