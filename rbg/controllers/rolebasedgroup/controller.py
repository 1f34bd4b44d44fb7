"""RoleBasedGroup controller: read the caches, call the pure plan, apply the difference.

All decisions live in rbg.group.plan; this module only moves data between the API and that function.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rbg.api.hub import RoleBasedGroup, RoleBasedGroupStatus
from rbg.controllers import decisions, podcache
from rbg.controllers.kinds import LWS, PODGROUP, RBG, RBGSA, RIS, VOLCANO_PODGROUP
from rbg.controllers.reading import read
from rbg.controllers.rolebasedgroup.statuswriter import StatusWriter
from rbg.group import names, revision, workloads
from rbg.group.plan import Plan, plan
from rbg.group.status import same_status
from rbg.lifecycle.observed import restarts
from rbg.runtime.client import Kube
from rbg.runtime.controller import Controller, Result, not_status_only
from rbg.runtime.diff import stamp, up_to_date
from rbg.runtime.errors import ApiError
from rbg.runtime.events import EventRecorder
from rbg.runtime.informer import Informer
from rbg.runtime.manager import Manager
from rbg.runtime.objects import (
    CONFIGMAP,
    CONTROLLERREVISION,
    DEPLOYMENT,
    POD,
    SERVICE,
    STATEFULSET,
    Key,
    Obj,
    rv_older,
    timestamp,
)

log = logging.getLogger(__name__)
CHILD_KINDS = (
    STATEFULSET,
    DEPLOYMENT,
    LWS,
    RIS,
    SERVICE,
    CONFIGMAP,
    PODGROUP,
    VOLCANO_PODGROUP,
    RBGSA,
    CONTROLLERREVISION,
)
#: kinds a user's object of the same name may exist of (a revision's name holds its hash: none)
NAMED_KINDS = tuple(k for k in CHILD_KINDS if k is not CONTROLLERREVISION)
#: kinds whose CRD may be absent (installed later, or by an upstream controller)
OPTIONAL_KINDS = (LWS, PODGROUP, VOLCANO_PODGROUP)
CHILD_KIND = {k.api_version + "/" + k.kind: k for k in CHILD_KINDS}


def _uncontrolled(owners: list[Obj]) -> str:
    """Who holds an object no controller owns: a RoleInstanceSet is the Go upstream's, made for a
    v1alpha2 role without a workload annotation, which this operator runs on another kind (D39)."""
    held = [f"{r.get('kind')} {r.get('name')}" for r in owners]
    if not held:
        return "no controller (made by hand?)"
    hint = ""
    if any(r.get("kind") == "RoleInstanceSet" for r in owners):
        hint = " (the Go upstream's RoleInstanceSet: delete it to migrate the role, D39)"
    return f"no controller, owned by {', '.join(held)}{hint}"


def _ref(obj: Obj) -> str:
    """apiVersion/kind: two kinds share the name PodGroup."""
    return f"{obj['apiVersion']}/{obj['kind']}"


WORKLOAD_KINDS = workloads.KINDS
TAKEN_RECHECK_SECONDS = 30.0


class RoleBasedGroupReconciler:
    def __init__(
        self, manager: Manager, kube: Kube, workers: int = 8, status_progress_interval: float = 5.0
    ) -> None:
        """`status_progress_interval`: seconds between status writes that only update counts (D19)."""
        self.kube = kube
        self.status_progress_interval = status_progress_interval
        self.rbgs = manager.informer(RBG)
        # only children carrying the group label are cached: our objects, not the whole cluster
        self.children: dict[str, Informer] = {
            k.api_version + "/" + k.kind: manager.informer(
                k, label_selector=names.GROUP_NAME, optional=k in OPTIONAL_KINDS
            )
            for k in CHILD_KINDS
        }
        # and the names of everyone else's objects of those kinds (metadata only), so that a group never
        # takes over a user's ConfigMap or Service of the same name, without a GET before each create
        self.others: dict[str, Informer] = {
            k.api_version + "/" + k.kind: manager.informer(
                k, label_selector=f"!{names.GROUP_NAME}", metadata_only=True, optional=k in OPTIONAL_KINDS
            )
            for k in NAMED_KINDS
        }
        # the operator's one pod cache: scheduled pods for coordinated scaling, restarts for recovery
        self.pods = podcache.pods(manager)
        self.recorder: EventRecorder = manager.recorder("rolebasedgroup-controller")
        self.status_writer = StatusWriter(kube, status_progress_interval)
        self.controller = Controller("rolebasedgroup", self.reconcile, workers=workers)
        # our own status writes come back as updates: they need no reconcile
        self.controller.for_informer(self.rbgs, predicate=not_status_only)
        for informer in self.children.values():
            self.controller.owns(informer, RBG)
        self.controller.watches(self.pods, self._pod_group, predicate=self._pod_matters)
        manager.add(self.controller)

    def _pod_group(self, pod: Obj) -> list[Key]:
        group = (pod["metadata"].get("labels") or {}).get(names.GROUP_NAME)
        return [Key(pod["metadata"].get("namespace") or "", group)] if group else []

    def _pod_matters(self, event: str, pod: Obj, old: Obj | None) -> bool:
        """A pod event a group must see: for groups that coordinate rolling updates or scaling, or recover
        from failures (D34, D35), a pod that appears, goes, is bound, fails or restarts a container.
        Other groups learn everything from their workloads' status."""
        keys = self._pod_group(pod)
        obj = self.rbgs.get(keys[0]) if keys else None
        if obj is None or not watches_pods(obj.get("spec") or {}):
            return False
        return event != "MODIFIED" or old is None or pod_signal(pod) != pod_signal(old)

    async def reconcile(self, key: Key) -> Result | None:
        obj = self.rbgs.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.status_writer.forget(key)
            return None  # garbage collection removes the children through their owner references
        rbg = read(RoleBasedGroup, obj, self.recorder)
        if rbg is None:
            return None
        last = self.status_writer.last(key)
        if (
            last is not None
            and last.uid == obj["metadata"].get("uid")
            and rv_older(obj["metadata"].get("resourceVersion"), last.resource_version)
        ):
            # the cache has not seen our last status write yet: decide on what was written (failure
            # recovery's bookkeeping above all: a recreation must never start twice)
            rbg.status = RoleBasedGroupStatus.model_validate(last.status)
        uid = rbg.metadata.uid
        children = [c for inf in self.children.values() for c in inf.by_owner(uid)]
        now = timestamp()
        pods = _by_role(podcache.of_group(self.pods, key.namespace, key.name))
        result = plan(rbg, children, now, pods=pods)
        stamped = [stamp(d, names.APPLIED_HASH) for d in result.apply]
        changed = [
            d for d in stamped if not up_to_date(self._observed_of(d, key.namespace), d, names.APPLIED_HASH)
        ]
        taken = self._taken(uid, {c["metadata"].get("uid") for c in children}, changed, key.namespace)
        if taken:  # nothing is written: the plan that reports it applies and deletes nothing
            result, changed = plan(rbg, children, now, taken, pods=pods), []
        rejected: dict[tuple[str, str], str] = {}
        # the ConfigMap and Services first: a workload starts only once what its pods use exists
        first = [d for d in changed if d["kind"] not in WORKLOAD_KINDS]
        then = [d for d in changed if d["kind"] in WORKLOAD_KINDS]
        if not await self._write_all(obj, first, result.delete, key.namespace, rejected):
            return None  # the namespace is going away, and the group with it: no retries
        written = not rejected  # the workloads are written only once the rest was accepted
        if written and not await self._write_all(obj, then, [], key.namespace, rejected):
            return None
        rolled = {
            (d["kind"], d["metadata"]["name"])
            for d in (then if written else [])
            if (d["kind"], d["metadata"]["name"]) not in rejected
            and self._observed_of(d, key.namespace) is not None
        }
        if rejected or rolled:
            # what the spec produces is refused by the API server (e.g. a container without an image):
            # say so in status and events instead of retrying the same write forever. A workload just
            # changed has not caught up with its new spec (the cache still shows it as it was): its role
            # is not Ready until the workload says so (a RoleBasedGroupSet rolls its next group on it)
            seen = [
                _not_caught_up(c) if (c.get("kind"), c["metadata"]["name"]) in rolled else c for c in children
            ]
            result = plan(rbg, seen, now, taken, rejected, pods=pods)
        wait = self.status_writer.wait(key, obj, result.status)
        if wait > 0:
            # progress (counts) only, and written moments ago: written once the interval has passed,
            # with whatever the counts are then
            return Result(requeue_after=wait)
        if result.replace and not rejected:
            await self._replace(obj, result.replace)
        written_now = await self.status_writer.write(key, obj, result.status)
        if result.recreate and (written_now or same_status(_status_of(rbg), result.status)):
            await self._recreate(obj, result)  # once the status holding the recreation is stored
        if written_now:
            # said once per change of state, not on every reconcile (events cost writes too)
            if result.invalid:
                reason = "FailedReconcileWorkload" if rejected else "InvalidSpec"
                self.recorder.event(obj, "Warning", reason, "; ".join(result.invalid))
            for role, deps in sorted(result.waiting.items()):
                msg = f"role {role} waits for {', '.join(deps)} to be Ready"
                self.recorder.event(obj, "Warning", "DependencyNotMet", msg)
        if taken:
            # the other owner's object may go away without any event reaching this group: look again
            return Result(requeue_after=TAKEN_RECHECK_SECONDS)
        if result.requeue_after is not None:  # a recreation's backoff ends then
            return Result(requeue_after=max(result.requeue_after, 0.5))
        return None

    async def _replace(self, obj: Obj, pods: list[Obj]) -> None:
        """rolloutStrategy type Recreate: the role's pods on the old template, deleted together."""
        roles = sorted({(p["metadata"].get("labels") or {}).get(names.ROLE_NAME, "") for p in pods})
        msg = f"recreating {len(pods)} pods of role {', '.join(roles)} together (rollingUpdate type Recreate)"
        self.recorder.event(obj, "Normal", "RecreatingRole", msg)
        decisions.deleted(f"RoleBasedGroup/{obj['metadata']['name']}", "rollingUpdate type Recreate", pods)
        await self._delete_pods(pods)

    async def _delete_pods(self, pods: list[Obj]) -> None:
        async def delete(pod: Obj) -> None:
            meta = pod["metadata"]
            try:
                await self.kube.delete(
                    POD, meta["name"], meta.get("namespace"), preconditions_uid=meta.get("uid")
                )
            except ApiError as exc:
                if not exc.conflict:  # 409: a pod of that name with another uid, the one meant is gone
                    raise

        async with asyncio.TaskGroup() as tg:
            for pod in pods:
                tg.create_task(delete(pod))

    async def _recreate(self, obj: Obj, result: Plan) -> None:
        """Delete the pods failure recovery recreates (their uids are in the stored status: a crash or an
        API error half-way is finished by the next pass), and say why."""
        for type_, reason, message in result.events:
            self.recorder.event(obj, "Warning" if type_ == "Warning" else "Normal", reason, message)
            log.info("failure recovery", extra={"group": obj["metadata"]["name"], "decision": message})
        decisions.deleted(f"RoleBasedGroup/{obj['metadata']['name']}", "failure recovery", result.recreate)
        await self._delete_pods(result.recreate)

    async def _write_all(
        self,
        owner: Obj,
        apply: list[Obj],
        delete: list[Obj],
        namespace: str,
        rejected: dict[tuple[str, str], str],
    ) -> bool:
        """Apply and delete concurrently; False when the namespace is terminating.

        A TaskGroup cancels the siblings of a failed write, so no write outlives its reconcile.
        """
        if not apply and not delete:
            return True
        try:
            async with asyncio.TaskGroup() as tg:
                for d in apply:
                    tg.create_task(self._apply(owner, d, namespace, rejected))
                for stale in delete:
                    tg.create_task(self._delete(owner, stale, namespace))
        except ExceptionGroup as group:
            for extra in group.exceptions[1:]:
                log.warning("another write of the same reconcile failed: %s", extra)
            first = group.exceptions[0]
            if isinstance(first, ApiError) and first.namespace_terminating:
                return False
            raise first from None
        return True

    def _taken(
        self, uid: str, ours: set[str | None], changed: list[Obj], namespace: str
    ) -> dict[tuple[str, str], str]:
        """Objects about to be written that exist under another owner (another group, or a user).

        Read from the caches alone: the group-labelled cache and the metadata-only cache of every other
        object of the child kinds. An object created moments ago may not be cached yet; a GET before each
        create would narrow that window, not close it, and cost a request per child. An object with no
        controller but owned (not controlled) by the group or by one of its children is the group's:
        upstream's headless Services are owned by their StatefulSet, so a group made by the Go operator
        is taken over with them (D39).
        """
        taken: dict[tuple[str, str], str] = {}
        for d in changed:
            ref = Key(namespace, d["metadata"]["name"])
            others = self.others.get(_ref(d))
            existing = self.children[_ref(d)].get(ref) or (others.get(ref) if others is not None else None)
            if existing is None:
                continue
            owners = existing["metadata"].get("ownerReferences") or []
            refs = [r for r in owners if r.get("controller")]
            if refs and refs[0].get("uid") == uid:
                continue
            if not refs and any(r.get("uid") == uid or r.get("uid") in ours for r in owners):
                continue
            owner = f"{refs[0]['kind']} {refs[0]['name']}" if refs else _uncontrolled(owners)
            taken[(d["kind"], d["metadata"]["name"])] = owner
        return taken

    def _observed_of(self, desired: Obj, namespace: str) -> Obj | None:
        """The cached object a desired body describes, if the cache has it."""
        return self.children[_ref(desired)].get(Key(namespace, desired["metadata"]["name"]))

    async def _apply(
        self, owner: Obj, desired: Obj, namespace: str, rejected: dict[tuple[str, str], str]
    ) -> None:
        observed = self._observed_of(desired, namespace)
        existed = observed is not None
        try:
            await self.kube.apply(desired)
        except ApiError as exc:
            if exc.not_found and desired["kind"] == "PodGroup":  # e.g. no Volcano in this cluster
                rejected[(desired["kind"], desired["metadata"]["name"])] = (
                    f"the {desired['apiVersion']} PodGroup kind is not installed in this cluster"
                )
                return
            if not exc.invalid:
                raise
            rejected[(desired["kind"], desired["metadata"]["name"])] = exc.message
            return
        decisions.record(f"RoleBasedGroup/{owner['metadata']['name']}", observed, desired)
        if not existed and desired["kind"] in WORKLOAD_KINDS:
            msg = f"created {desired['kind']} {desired['metadata']['name']}"
            self.recorder.event(owner, "Normal", "SuccessfulCreate", msg)

    async def _delete(self, owner: Obj, stale: Obj, namespace: str) -> None:
        name = stale["metadata"]["name"]
        await self.kube.delete(
            CHILD_KIND[_ref(stale)], name, namespace, preconditions_uid=stale["metadata"]["uid"]
        )
        if stale["kind"] == "ControllerRevision":
            log.debug("revision pruned", extra={"group": owner["metadata"]["name"], "revision": name})
            return
        self.recorder.event(
            owner, "Normal", "SuccessfulDelete", f"deleted {stale['kind']} {name}: no role uses it"
        )


def _not_caught_up(workload: Obj) -> Obj:
    """The workload as it is once its new spec is stored: a generation its status has not observed."""
    meta = workload["metadata"]
    return {**workload, "metadata": {**meta, "generation": int(meta.get("generation") or 0) + 1}}


def _by_role(pods: list[Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        role = (pod["metadata"].get("labels") or {}).get(names.ROLE_NAME)
        if role is not None:
            out.setdefault(role, []).append(pod)
    return out


def watches_pods(spec: Obj) -> bool:
    """Whether a group reads its pods: a coordinated rolling update or scaling, a restart policy, or a
    StatefulSet rollout the operator steps."""
    if any(
        (c.get("strategy") or {}).keys() & {"rollingUpdate", "scaling"}
        for c in spec.get("coordination") or []
    ):
        return True
    for role in spec.get("roles") or []:
        config = role.get("restartPolicyConfig") or {}
        kind = (role.get("workload") or {}).get("kind", "StatefulSet")
        policy = config.get("type") or role.get("restartPolicy")
        if policy not in (None, "None") or (policy is None and kind == "RoleInstanceSet"):
            return True  # (recovery.policy_of: a RoleInstanceSet role recreates its instances by default)
        ru = (role.get("rolloutStrategy") or {}).get("rollingUpdate") or {}
        stepped = ru.get("maxSurge") not in (None, 0, "0", "0%") or ru.get("maxUnavailable") not in (
            None,
            1,
            "1",
        )
        if kind == "StatefulSet" and (stepped or ru.get("type") == "Recreate"):
            return True  # the operator steps its rollout on its pods (D36)
    return False


def pod_signal(pod: Obj) -> tuple[Any, ...]:
    """What of a pod those groups decide on: bound, phase, ready, deleting, revision, container restarts."""
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return (
        (pod.get("spec") or {}).get("nodeName"),
        status.get("phase"),
        ready,
        bool(pod["metadata"].get("deletionTimestamp")),
        (pod["metadata"].get("labels") or {}).get(revision.ROLE_REVISION),
        restarts(pod),
    )


def _status_of(rbg: RoleBasedGroup) -> Obj:
    return rbg.status.wire() if rbg.status is not None else {}
