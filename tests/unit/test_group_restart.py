"""Failure recovery (`role.restartPolicy`): what a container restart or a failed pod recreates, the backoff
between recreations of a scope, the bound on them, the recreation in flight, and the bookkeeping kept in
status so that a restarted operator decides exactly as before."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.group import names
from rbg.group.restart import (
    Backoff,
    Bookkeeping,
    Decision,
    RestartRecord,
    RolePolicy,
    clear,
    decide,
    from_status,
    instance_of,
    to_status,
)

Obj = dict[str, Any]
GROUP = "RecreateRBGOnPodRestart"
INSTANCE = "RecreateRoleInstanceOnPodRestart"
T0 = 1_700_000_000.0


def pod(
    name: str,
    role: str,
    index: int | None = None,
    *,
    restarts: int = 0,
    init_restarts: int = 0,
    phase: str = "Running",
    reason: str | None = None,
    deleting: bool = False,
    lws: int | None = None,
    uid: str | None = None,
) -> Obj:
    labels = {names.ROLE_NAME: role}
    if index is not None:
        labels[names.POD_INDEX] = str(index)
    if lws is not None:
        labels["leaderworkerset.sigs.k8s.io/group-index"] = str(lws)
    status: Obj = {
        "phase": phase,
        "containerStatuses": [
            {"name": "sidecar", "restartCount": 0},
            {"name": "engine", "restartCount": restarts},
        ],
        "initContainerStatuses": [{"name": "fetch", "restartCount": init_restarts}],
    }
    if reason is not None:
        status["reason"] = reason
    meta: Obj = {"name": name, "uid": uid or f"uid-{name}", "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "status": status}


def sts(role: str, policy: str | None, rolling: bool = False) -> RolePolicy:
    return RolePolicy(role, policy, "StatefulSet", rolling)


def pd(prefill: str | None = GROUP, decode: str | None = None) -> list[RolePolicy]:
    return [sts("prefill", prefill), sts("decode", decode)]


def group_pods(**crash: int) -> list[Obj]:
    """g-prefill-0..2 and g-decode-0..1; `crash` gives a restartCount by pod name (dashes as underscores)."""
    out = [pod(f"g-prefill-{i}", "prefill", i) for i in range(3)]
    out += [pod(f"g-decode-{i}", "decode", i) for i in range(2)]
    for p in out:
        n = crash.get(p["metadata"]["name"].replace("-", "_"), 0)
        p["status"]["containerStatuses"][1]["restartCount"] = n
    return out


def deleted(d: Decision) -> list[str]:
    return [p["metadata"]["name"] for p in d.delete]


def run(pods: list[Obj], policies: list[RolePolicy], book: Bookkeeping | None = None, **kw: Any) -> Decision:
    now = kw.pop("now", T0)
    return decide(pods, policies, Backoff(**kw), book or Bookkeeping(), now)


def test_a_container_restart_under_the_group_policy_recreates_every_pod_of_every_role() -> None:
    d = run(group_pods(g_prefill_0=1), pd())
    assert deleted(d) == ["g-decode-0", "g-decode-1", "g-prefill-0", "g-prefill-1", "g-prefill-2"]
    assert d.events == [
        (
            "Warning",
            "RecreatingGroup",
            "pod g-prefill-0 container engine restarted (restartCount 1): recreating all 5 pods of the group "
            "(recreation 1)",
        )
    ]
    assert d.restarting
    assert d.requeue_after is None
    assert d.bookkeeping.recreating == tuple(sorted(f"uid-{n}" for n in deleted(d)))
    assert d.bookkeeping.records == (RestartRecord("", 1, T0, False, d.events[0][2].split(":")[0]),)


def test_a_failed_pod_triggers_and_its_reason_is_named() -> None:
    pods = group_pods()
    pods[1] = pod("g-prefill-1", "prefill", 1, phase="Failed", reason="Evicted")
    d = run(pods, pd())
    assert len(d.delete) == 5
    assert d.events[0][2].startswith(
        "pod g-prefill-1 failed (phase Failed, reason Evicted): recreating all 5"
    )
    pods[1] = pod("g-prefill-1", "prefill", 1, phase="Failed")
    assert run(pods, pd()).events[0][2].startswith("pod g-prefill-1 failed (phase Failed): ")


def test_an_init_container_restart_triggers() -> None:
    pods = group_pods()
    pods[0] = pod("g-prefill-0", "prefill", 0, init_restarts=2)
    d = run(pods, pd())
    assert d.events[0][2].startswith("pod g-prefill-0 init container fetch restarted (restartCount 2)")


def test_healthy_pods_and_roles_without_a_policy_recreate_nothing() -> None:
    assert run(group_pods(), pd()).delete == []
    for policy in (None, "None", "SomethingElse"):
        d = run(group_pods(g_prefill_0=3), pd(prefill=policy))
        assert (d.delete, d.events, d.restarting, d.bookkeeping) == ([], [], False, Bookkeeping())
    # a pod of no known role
    assert run([pod("x-0", "other", 0, restarts=1)], pd()).delete == []


def test_the_instance_policy_recreates_only_the_restarted_statefulset_pod() -> None:
    d = run(group_pods(g_prefill_1=1), pd(prefill=INSTANCE))
    assert deleted(d) == ["g-prefill-1"]
    assert d.events == [
        (
            "Warning",
            "ReCreateInstance",
            "pod g-prefill-1 container engine restarted (restartCount 1): recreating pod g-prefill-1 of role "
            "prefill (recreation 1)",
        )
    ]
    assert [r.scope for r in d.bookkeeping.records] == ["prefill/1"]
    assert d.bookkeeping.recreating == ("uid-g-prefill-1",)


def test_the_instance_policy_leaves_leaderworkerset_roles_to_the_leaderworkerset() -> None:
    lws = [RolePolicy("prefill", INSTANCE, "LeaderWorkerSet")]
    pods = [
        pod("g-prefill-0", "prefill", lws=0, restarts=1),
        pod("g-prefill-0-1", "prefill", lws=0, restarts=4),
    ]
    d = run(pods, lws)
    assert (d.delete, d.events, d.bookkeeping) == ([], [], Bookkeeping())


def _component_pod(instance: int, component: str, ident: int, restarts: int = 0) -> Obj:
    """A pod of a RoleInstanceSet role: {set}-{instance}-{component}-{id} (D42)."""
    p = pod(f"g-infer-{instance}-{component}-{ident}", "infer", ident, restarts=restarts)
    p["metadata"]["labels"][names.ROLE_INSTANCE_INDEX] = str(instance)
    return p


def test_the_instance_policy_recreates_every_pod_of_a_role_instance_set_instance_and_no_other() -> None:
    pods = [
        _component_pod(i, c, k, restarts=1 if (i, c, k) == (1, "worker", 1) else 0)
        for i in (0, 1)
        for c, n in (("leader", 1), ("worker", 2))
        for k in range(n)
    ]
    d = run(pods, [RolePolicy("infer", INSTANCE, "RoleInstanceSet")])
    assert deleted(d) == ["g-infer-1-leader-0", "g-infer-1-worker-0", "g-infer-1-worker-1"]
    assert [r.scope for r in d.bookkeeping.records] == ["infer/1"]
    # the same pods of a StatefulSet role: only the restarted pod (its instance is itself)
    d = run(pods, [RolePolicy("infer", INSTANCE, "StatefulSet")])
    assert deleted(d) == ["g-infer-1-worker-1"]


def test_the_group_policy_on_a_leaderworkerset_role_recreates_the_group() -> None:
    policies = [RolePolicy("prefill", GROUP, "LeaderWorkerSet"), sts("decode", None)]
    pods = [pod("g-prefill-0", "prefill", lws=0), pod("g-prefill-0-1", "prefill", lws=0, restarts=1)]
    pods.append(pod("g-decode-0", "decode", 0))
    assert deleted(run(pods, policies)) == ["g-decode-0", "g-prefill-0", "g-prefill-0-1"]


def test_the_instance_of_a_pod_is_its_lws_group_then_its_pod_index_then_its_name() -> None:
    assert instance_of(pod("a", "r", 3, lws=1)) == "1"
    assert instance_of(pod("a", "r", 3)) == "3"
    assert instance_of(pod("web-7f9c-abcde", "r")) == "web-7f9c-abcde"


def test_a_deployment_pod_replaced_under_a_new_name_still_backs_off() -> None:
    web = [RolePolicy("web", INSTANCE, "Deployment")]
    d1 = run([pod("g-web-aaa", "web", restarts=1), pod("g-web-bbb", "web")], web)
    assert deleted(d1) == ["g-web-aaa"]
    assert [r.scope for r in d1.bookkeeping.records] == ["web/*"]
    # the ReplicaSet's new pod crashes too: the role's record backs it off
    d2 = run([pod("g-web-ccc", "web", restarts=1), pod("g-web-bbb", "web")], web, d1.bookkeeping, now=T0 + 5)
    assert d2.delete == []
    assert d2.requeue_after == 25


def test_a_rolling_role_never_triggers_but_other_roles_still_do() -> None:
    rolling = [sts("prefill", GROUP, rolling=True), sts("decode", INSTANCE)]
    assert run(group_pods(g_prefill_0=2), rolling).delete == []
    d = run(group_pods(g_prefill_0=2, g_decode_1=1), rolling)
    assert deleted(d) == ["g-decode-1"]


def test_deleting_pods_never_trigger_and_are_not_deleted_again() -> None:
    pods = group_pods()
    pods[0] = pod("g-prefill-0", "prefill", 0, restarts=5, deleting=True)
    assert run(pods, pd()).delete == []
    pods[1] = pod("g-prefill-1", "prefill", 1, restarts=1)
    d = run(pods, pd())
    assert "g-prefill-0" not in deleted(d)
    assert d.events[0][2].startswith(
        "pod g-prefill-1 container engine restarted (restartCount 1): recreating all 4"
    )


def test_a_recreation_in_flight_is_reissued_and_starts_nothing_new() -> None:
    first = run(group_pods(g_prefill_0=1), pd())
    # after a crash half-way: two pods are deleting, the others were never deleted; one pod is already new
    pods = group_pods(g_prefill_0=1, g_decode_0=3)
    pods[0]["metadata"]["deletionTimestamp"] = "now"
    pods[2]["metadata"]["deletionTimestamp"] = "now"
    pods[4] = pod("g-decode-1", "decode", 1, uid="new", restarts=2)
    d = run(pods, pd(decode=INSTANCE), first.bookkeeping, now=T0 + 1)
    assert deleted(d) == ["g-decode-0", "g-prefill-1"]
    assert d.events == []
    assert d.restarting
    assert d.bookkeeping.records == first.bookkeeping.records
    assert d.bookkeeping.recreating == (
        "uid-g-decode-0",
        "uid-g-prefill-0",
        "uid-g-prefill-1",
        "uid-g-prefill-2",
    )
    # the old pods are gone: the recreation is over, and the new ones (restartCount 0) start nothing
    fresh = [pod(f"g-prefill-{i}", "prefill", i, uid=f"n{i}") for i in range(3)]
    done = run(fresh, pd(), d.bookkeeping, now=T0 + 2)
    assert (done.delete, done.restarting, done.bookkeeping.recreating) == ([], False, ())
    assert done.bookkeeping.records == first.bookkeeping.records


def test_the_second_recreation_of_a_scope_waits_its_backoff_and_says_for_how_long() -> None:
    book = run(group_pods(g_prefill_0=1), pd()).bookkeeping
    book = Bookkeeping(book.records, ())
    pods = group_pods(g_decode_1=1)
    waiting = run(pods, pd(decode=GROUP), book, now=T0 + 12)
    assert (waiting.delete, waiting.events, waiting.restarting) == ([], [], False)
    assert waiting.requeue_after == 18
    assert waiting.bookkeeping == book
    due = run(pods, pd(decode=GROUP), book, now=T0 + 30)
    assert len(due.delete) == 5
    assert due.bookkeeping.records[0].count == 2
    assert due.events[0][2].endswith("(recreation 2)")


def test_the_backoff_doubles_up_to_its_cap() -> None:
    pods, policies = group_pods(g_prefill_0=1), pd()
    for count, wait in [(1, 10), (2, 20), (3, 40), (4, 50), (9, 50)]:
        book = Bookkeeping((RestartRecord("", count, T0),))
        d = run(pods, policies, book, now=T0, base_seconds=10, max_seconds=50)
        assert d.requeue_after == wait
        assert run(pods, policies, book, now=T0 + wait, base_seconds=10, max_seconds=50).delete != []


def test_the_requeue_is_the_nearest_wait_over_scopes() -> None:
    book = Bookkeeping((RestartRecord("prefill/0", 2, T0), RestartRecord("prefill/1", 1, T0)))
    d = run(group_pods(g_prefill_0=1, g_prefill_1=1), pd(prefill=INSTANCE), book, now=T0 + 10)
    assert d.delete == []
    assert d.requeue_after == 20


def test_instances_of_different_scopes_recreate_in_the_same_call() -> None:
    book = Bookkeeping((RestartRecord("prefill/2", 3, T0),))
    d = run(group_pods(g_prefill_0=1, g_prefill_2=1, g_decode_1=1), pd(INSTANCE, INSTANCE), book, now=T0 + 1)
    assert deleted(d) == ["g-decode-1", "g-prefill-0"]
    assert [e[1] for e in d.events] == ["ReCreateInstance", "ReCreateInstance"]
    assert d.requeue_after == 119
    assert {r.scope: r.count for r in d.bookkeeping.records} == {
        "decode/1": 1,
        "prefill/0": 1,
        "prefill/2": 3,
    }


def test_the_group_scope_wins_over_instances() -> None:
    pods = group_pods(g_prefill_1=1, g_decode_0=1)
    d = run(pods, pd(GROUP, INSTANCE))
    assert len(d.delete) == 5
    assert [e[1] for e in d.events] == ["RecreatingGroup"]
    # while the group waits its backoff, no instance recreates on its own either
    book = Bookkeeping((RestartRecord("", 1, T0),))
    waiting = run(pods, pd(GROUP, INSTANCE), book, now=T0 + 1)
    assert (waiting.delete, waiting.requeue_after) == ([], 29)


def test_a_long_stable_scope_starts_afresh() -> None:
    pods = group_pods(g_prefill_0=1)
    book = Bookkeeping((RestartRecord("", 5, T0),))
    assert run(pods, pd(), book, now=T0 + 1199).bookkeeping.records[0].count == 6  # stable window: 2 x 600
    d = run(pods, pd(), book, now=T0 + 1200)
    assert len(d.delete) == 5
    assert d.bookkeeping.records[0].count == 1
    # a small cap still waits at least 600 s; a record that went stale is dropped from the bookkeeping
    small = Backoff(10, 20)
    assert decide(
        group_pods(), pd(), small, Bookkeeping((RestartRecord("", 3, T0),)), T0 + 599
    ).bookkeeping.records
    assert decide(
        group_pods(), pd(), small, Bookkeeping((RestartRecord("", 3, T0),)), T0 + 600
    ).bookkeeping == (Bookkeeping())


def test_a_zero_base_and_cap_disable_the_backoff() -> None:
    book = Bookkeeping((RestartRecord("", 7, T0),))
    d = run(group_pods(g_prefill_0=1), pd(), book, now=T0, base_seconds=0, max_seconds=0)
    assert len(d.delete) == 5


def test_the_limit_marks_the_scope_failed_once_and_for_all() -> None:
    pods = group_pods(g_prefill_0=4)
    book = Bookkeeping((RestartRecord("", 2, T0),))
    d = run(pods, pd(), book, now=T0 + 100, max_restarts=2)
    assert d.delete == []
    message = (
        "pod g-prefill-0 container engine restarted (restartCount 4); the group recreated 2 times, the limit "
        "of restartPolicy: left for a person"
    )
    assert d.events == [("Warning", "RestartLimitReached", message)]
    assert d.failed == [message]
    assert d.bookkeeping.records == (RestartRecord("", 2, T0, True, message.split(";")[0]),)
    # later: still failed, said once, stable for ever, nothing recreated
    again = run(pods, pd(), from_status(to_status(d.bookkeeping)), now=T0 + 1e6, max_restarts=2)
    assert (again.delete, again.events, again.failed) == ([], [], [message])
    # the spec changed: the controller clears the records and recovery starts afresh
    assert len(run(pods, pd(), clear(again.bookkeeping), now=T0 + 1e6, max_restarts=2).delete) == 5


def test_an_instance_at_its_limit_is_named_and_a_limit_of_zero_never_recreates() -> None:
    d = run(group_pods(g_prefill_1=1), pd(prefill=INSTANCE), max_restarts=0)
    assert d.delete == []
    assert d.failed == [
        "pod g-prefill-1 container engine restarted (restartCount 1); role prefill instance 1 recreated 0 "
        "times, the limit of restartPolicy: left for a person"
    ]


def test_a_failed_group_scope_does_not_hold_instances_back() -> None:
    book = Bookkeeping((RestartRecord("", 1, T0, True, "pod g-prefill-0 failed (phase Failed)"),))
    d = run(group_pods(g_prefill_0=1, g_decode_1=1), pd(GROUP, INSTANCE), book, now=T0 + 1)
    assert deleted(d) == ["g-decode-1"]
    assert len(d.failed) == 1


def test_clear_forgets_the_records_but_not_the_recreation_in_flight() -> None:
    book = Bookkeeping((RestartRecord("", 1, T0, True, "x"),), ("b", "a"))
    assert clear(book) == Bookkeeping((), ("a", "b"))


def test_the_same_input_in_any_order_gives_the_same_decision() -> None:
    pods = group_pods(g_prefill_2=1, g_prefill_1=2, g_decode_0=1)
    policies = pd(INSTANCE, INSTANCE)
    expected = run(pods, policies)
    for seed in range(10):
        shuffled = pods[:]
        random.Random(seed).shuffle(shuffled)  # noqa: S311
        assert run(shuffled, policies) == expected
    group = run(pods, pd(GROUP, INSTANCE))
    assert group.events[0][2].startswith("pod g-prefill-1 ")  # the first triggering pod by name


def test_odd_input_never_raises() -> None:
    odd: list[Any] = [
        None,
        "pod",
        {},
        {"metadata": None, "status": None},
        {"metadata": {"labels": None, "name": 3}},
        {"metadata": {"labels": {names.ROLE_NAME: "prefill"}}, "status": {"containerStatuses": None}},
        {"metadata": {"labels": {names.ROLE_NAME: "prefill"}}, "status": {"containerStatuses": [None, 1]}},
        {
            "metadata": {"labels": {names.ROLE_NAME: "prefill"}},
            "status": {"containerStatuses": [{"restartCount": "2"}]},
        },
        {"metadata": {"labels": {names.ROLE_NAME: 7}}, "status": "Failed"},
    ]
    for book in (Bookkeeping(), Bookkeeping((RestartRecord("", 1, None),), ("x",)), None):
        d = decide(odd, pd(), Backoff(), book, T0)
        assert d.delete == []
    d = decide(
        [*odd, {"metadata": {"labels": {names.ROLE_NAME: "prefill"}}, "status": {"phase": "Failed"}}],
        None,
        Backoff(),
        None,
        T0,
    )
    assert d.delete == []
    d = decide(
        [*odd, {"metadata": {"labels": {names.ROLE_NAME: "prefill"}}, "status": {"phase": "Failed"}}],
        pd(),
        Backoff(),
        None,
        T0,
    )
    assert len(d.delete) == 8  # every mapping; those without a uid are not tracked
    assert d.bookkeeping.recreating == ()
    assert decide(None, None, Backoff(-5, -5, -1), Bookkeeping(), float("nan")).delete == []
    assert (
        run(
            group_pods(g_prefill_0=1), pd(), Bookkeeping((RestartRecord("", 10**9, T0),)), now=T0
        ).requeue_after
        == 600
    )


def test_the_status_is_camel_case_json_with_rfc3339_times() -> None:
    d = run(group_pods(g_prefill_0=1), pd(), now=T0 + 0.25)
    status = to_status(d.bookkeeping)
    assert status == {
        "recreating": sorted(f"uid-{n}" for n in deleted(d)),
        "records": [
            {
                "scope": "",
                "count": 1,
                "lastRestartTime": "2023-11-14T22:13:21Z",  # rounded up to the second
                "failed": False,
                "trigger": "pod g-prefill-0 container engine restarted (restartCount 1)",
            }
        ],
    }
    assert from_status(json.loads(json.dumps(status))) == d.bookkeeping


def test_garbage_status_reads_as_empty_and_bad_entries_are_dropped() -> None:
    for garbage in (None, "x", 3, [], {"records": "x", "recreating": {"a": 1}}, {"records": [None, 1, "r"]}):
        assert from_status(garbage) == Bookkeeping()
    status = {
        "recreating": ["a", 3, None, "", "a"],
        "records": [
            {
                "scope": "p/0",
                "count": 2,
                "lastRestartTime": "2024-01-01T00:00:00Z",
                "failed": True,
                "trigger": "t",
            },
            {"scope": "p/0", "count": 9},  # a duplicate: the first wins
            {"scope": "p/1", "count": -1},
            {"scope": "p/2", "count": True},
            {"scope": 4, "count": 1},
            {"scope": "p/3", "count": 1, "lastRestartTime": "yesterday", "failed": "yes", "trigger": 5},
            {"scope": "p/4", "count": 1, "lastRestartTime": "2024-01-01T01:00:00"},  # no zone: UTC
        ],
    }
    assert from_status(status) == Bookkeeping(
        (
            RestartRecord("p/0", 2, 1704067200.0, True, "t"),
            RestartRecord("p/3", 1, None, False, ""),
            RestartRecord("p/4", 1, 1704070800.0, False, ""),
        ),
        ("a",),
    )


# --- a crash-looping pod over time: an oracle that simulates the cluster and the schedule itself ---


@dataclass
class SimPod:
    name: str
    role: str
    index: int
    uid: str
    created: int
    crash_after: int | None  # seconds after creation of its first container restart; None: healthy
    deleted_at: int | None = None

    def as_dict(self, t: int) -> Obj:
        restarts = 0
        if self.crash_after is not None and t >= self.created + self.crash_after:
            restarts = 1 + (t - self.created - self.crash_after) // 10
        p = pod(self.name, self.role, self.index, restarts=restarts, uid=self.uid)
        if self.deleted_at is not None:
            p["metadata"]["deletionTimestamp"] = str(self.deleted_at)
        return p


@dataclass
class Sim:
    policy: str
    backoff: Backoff
    crash_after: int
    lag: int  # seconds from a delete to the replacement pod
    gaps: list[int]  # seconds between reconciles when nothing else happens
    flaky: list[bool]  # which delete calls fail (an API error, a crash half-way); a pod's third try succeeds
    roundtrip: bool
    horizon: int = 6_000
    pods: list[SimPod] = field(default_factory=list)
    uids: int = 0
    trace: list[tuple[Any, ...]] = field(default_factory=list)
    #: (time, uid of the triggering pod, when its crash was first visible, when the previous recreation ended)
    recreations: list[tuple[int, str, int, int]] = field(default_factory=list)
    limit_events: int = 0

    def new(self, name: str, role: str, index: int, t: int, crash: int | None) -> SimPod:
        self.uids += 1
        return SimPod(name, role, index, f"u{self.uids}", t, crash)

    def run(self) -> None:
        self.pods = [
            self.new("g-prefill-0", "prefill", 0, 0, self.crash_after),
            self.new("g-decode-0", "decode", 0, 0, None),
        ]
        policies = [sts("prefill", self.policy), sts("decode", None)]
        book, t, step, calls = Bookkeeping(), 0, 0, 0
        pending: set[str] = set()  # the pods the last recreation deleted, until they are gone
        ended, tries = 0, dict[str, int]()
        while t <= self.horizon:
            for i, p in enumerate(self.pods):  # a deleted pod is replaced `lag` seconds later
                if p.deleted_at is not None and t >= p.deleted_at + self.lag:
                    self.pods[i] = self.new(p.name, p.role, p.index, p.deleted_at + self.lag, p.crash_after)
            if pending and not pending & {p.uid for p in self.pods}:
                pending, ended = set(), t
            if self.roundtrip:
                book = from_status(json.loads(json.dumps(to_status(book))))
            crashy = self.pods[0]
            d = decide([p.as_dict(t) for p in self.pods], policies, self.backoff, book, t)
            self.trace.append(
                (t, deleted(d), d.events, d.requeue_after, d.restarting, d.failed, to_status(d.bookkeeping))
            )
            assert d.restarting == bool(pending or d.delete)
            if any(e[1] in ("RecreatingGroup", "ReCreateInstance") for e in d.events):
                assert not pending  # never while one is in flight
                assert crashy.crash_after is not None
                self.recreations.append((t, crashy.uid, crashy.created + crashy.crash_after, ended))
                pending = {x["metadata"]["uid"] for x in d.delete}
            else:
                assert {x["metadata"]["uid"] for x in d.delete} <= pending  # only retries
            self.limit_events += sum(e[1] == "RestartLimitReached" for e in d.events)
            failed = False
            for x in d.delete:
                p = next(p for p in self.pods if p.uid == x["metadata"]["uid"])
                assert p.deleted_at is None
                tries[p.uid] = tries.get(p.uid, 0) + 1
                calls += 1
                if self.flaky[calls % len(self.flaky)] and tries[p.uid] < 3:
                    failed = True
                    break  # the rest of this pass is lost too
                p.deleted_at = t
            book = d.bookkeeping
            # the next reconcile: a requeue (also after an error), a watched change (a deletion started, a
            # crash, a replacement), or a resync
            nexts = [t + self.gaps[step % len(self.gaps)]]
            if d.requeue_after is not None:
                nexts.append(t + int(d.requeue_after))
            if d.delete:
                nexts.append(t + 1)
            for p in self.pods:
                if p.crash_after is not None and p.created + p.crash_after > t:
                    nexts.append(p.created + p.crash_after)
                if p.deleted_at is not None:
                    nexts.append(max(p.deleted_at + self.lag, t + 1))
            t, step = min(nexts), step + 1
            assert (
                failed or not d.delete or all(p.deleted_at is not None for p in self.pods if p.uid in pending)
            )


def expected_delay(backoff: Backoff, count: int) -> int:
    return min(backoff.base_seconds * 2 ** (count - 1), backoff.max_seconds)


backoffs = st.builds(
    Backoff,
    base_seconds=st.sampled_from([0, 1, 5, 30]),
    max_seconds=st.sampled_from([0, 20, 120, 600]),
    max_restarts=st.none() | st.integers(0, 6),
)


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from([GROUP, INSTANCE]),
    backoff=backoffs,
    crash_after=st.integers(5, 100),
    lag=st.integers(0, 30),
    gaps=st.lists(st.integers(30, 600), min_size=1, max_size=6),
    flaky=st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_a_crash_looping_pod_is_recreated_on_the_backoff_schedule_and_stops_at_the_limit(
    policy: str, backoff: Backoff, crash_after: int, lag: int, gaps: list[int], flaky: list[bool]
) -> None:
    sim = Sim(policy, backoff, crash_after, lag, gaps, flaky, roundtrip=False)
    sim.run()
    times = [r[0] for r in sim.recreations]
    # never more than one recreation per trigger (a crashed pod)
    assert len({r[1] for r in sim.recreations}) == len(sim.recreations)
    # each one as soon as its pod crashed, the previous recreation is over and the backoff after it has
    # passed, never sooner; a crash loop never looks stable
    if backoff.max_restarts != 0:
        assert times[0] == crash_after
    for k in range(1, len(times)):
        _, _, crashed, ended = sim.recreations[k]
        assert times[k] == max(crashed, ended, times[k - 1] + expected_delay(backoff, k))
        assert times[k] - times[k - 1] < max(2 * backoff.max_seconds, 600)
    # so the count over the horizon is bounded by the schedule
    bound, elapsed = 1, 0
    while elapsed + expected_delay(backoff, bound) <= sim.horizon:
        elapsed, bound = elapsed + max(expected_delay(backoff, bound), 1), bound + 1
    assert len(times) <= bound
    if backoff.max_restarts is None:
        assert len(times) >= sim.horizon // (max(lag + crash_after, backoff.max_seconds) + 10)
        assert sim.limit_events == 0
    else:
        # stops at exactly max_restarts, then failed, said once; nothing is deleted after
        assert len(times) == backoff.max_restarts
        assert sim.limit_events == 1
        assert "left for a person" in sim.trace[-1][5][0]
        assert all(not entry[1] for entry in sim.trace if entry[0] > (times[-1] if times else -1) + 100)
    # a restart of the operator (status round trip before every call) decides exactly the same
    again = Sim(policy, backoff, crash_after, lag, gaps, flaky, roundtrip=True)
    again.run()
    assert again.trace == sim.trace
