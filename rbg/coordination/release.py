"""Which gated pods of a batch source to release where, which pods to replace, and why a batch waits.

Pure: the group, one batch source (an AffinityScheduling coordination, or the group exclusive topology
as a coordination of one batch), the group's pods, the nodes and the capacity in use in; a Decision out.
The controller applies it (rbg.controllers.coordination) and the tracker (rbg.coordination.tracker)
turns batches that wait too long into Stuck.

For each batch, in order:
- **Members created under an earlier layout** (ratios, roles or topology key changed, a coordination
  added to a running group: their coordinated label differs, or they carry no batch label): once one
  member of the new layout exists gated, the others are deleted together, so the StatefulSet recreates
  them gated and the batch is placed whole (a StatefulSet replaces one pod at a time and waits for it
  to be Ready, which a gated pod never is: replacing them one by one would freeze the rollout, D27).
  Pods a role's partition keeps on the old template are never deleted (they would come back old).
- **A batch with a domain** (a member bound there, or released and pinned there): the domain is checked
  before anything rejoins it: every member's node must still exist and carry the key, members released
  and not bound must be pinned to a node that exists, is schedulable and has room, and the recreated
  (gated) members must fit in the domain by the planner. If it holds, they are released there, each
  pinned to the node the planner chose. If not, the batch moves **whole**: when another domain can
  hold every member, the members still running or pinned are deleted (recreated gated, the batch is then
  planned anew); when none can, nothing is deleted and the batch waits with both reasons (D27).
- **A batch without a domain** is planned once every member exists: the planner's best-fit domain and a
  node per pod; Sequential releases batch k+1 only when no earlier batch is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from rbg.api.hub import AffinityScheduling, Coordination, RoleBasedGroup
from rbg.coordination.batches import EXCLUSIVE, ROLE_NAME, Obj, batch_label, is_current, ordinal_of
from rbg.coordination.planner import Cluster, NodeInfo, Placed, PodNeeds, Unplaceable
from rbg.coordination.resources import HOSTNAME, gated, node_info, pod_needs, pod_requests
from rbg.group.workloads import role_partition

Used = Mapping[str, Mapping[str, Decimal]]


@dataclass
class BatchState:
    index: int
    members: list[Obj] = field(default_factory=list)  # created under the present layout, not terminating
    domain: str | None = None  # where its released members are pinned or bound
    phase: str = "Pending"  # Pending | Planned | Bound (Stuck is the tracker's: waiting for too long)
    message: str = ""
    #: it waits for something that may not come (no domain, no room, the scheduler refuses a member),
    #: as opposed to its turn or pods being replaced: only such a wait turns Stuck
    waiting: bool = False


@dataclass
class Decision:
    """What one pass does for one batch source."""

    release: list[tuple[Obj, str, str | None]] = field(default_factory=list)  # (gated pod, domain, node)
    delete: list[tuple[Obj, str]] = field(default_factory=list)  # (pod, why): replaced for its batch
    assigned: dict[str, str] = field(default_factory=dict)  # pod name -> node (the planner's binding)
    batches: list[BatchState] = field(default_factory=list)
    planned: list[tuple[int, str]] = field(default_factory=list)  # newly planned (batch, domain)
    moved: list[tuple[int, str, str]] = field(default_factory=list)  # (batch, domain it leaves, why)
    #: gated pods of an earlier layout that cannot be replaced (kept by a partition, or not of a
    #: StatefulSet role): they run as they were, outside any batch (the webhook gates every coordinated
    #: pod, since its cache may lag the layout; the controller decides)
    ungate: list[Obj] = field(default_factory=list)

    @property
    def unplaced(self) -> dict[int, str]:
        """Batches that wait for something that may not come, with why."""
        return {b.index: b.message for b in self.batches if b.waiting}


def _statefulset_pod(pod: Obj) -> bool:
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == "StatefulSet" and o.get("controller") for o in owners)


def _unschedulable(pod: Obj) -> str | None:
    """The scheduler's own word when it cannot place the pod (its PodScheduled condition)."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return ": ".join(x for x in (c.get("reason"), c.get("message")) if x) or "not schedulable"
    return None


class _Cluster:
    """The nodes as the decisions read them, and the capacity still free (taken as batches are placed):
    one planner index for the whole pass (rbg.coordination.planner.Cluster)."""

    def __init__(self, nodes: Sequence[Obj], used: Used, key: str) -> None:
        self.key = key
        self.infos = [node_info(n) for n in nodes]
        self.by_name = {i.name: i for i in self.infos}
        self.by_host = {i.labels[HOSTNAME]: i for i in self.infos if HOSTNAME in i.labels}
        self.used: dict[str, dict[str, Decimal]] = {k: dict(v) for k, v in used.items()}
        self.index = Cluster(self.infos, self.used)

    def take(self, node: str, pod: Obj) -> None:
        have = self.used.setdefault(node, {})
        for k, v in {**pod_requests(pod), "pods": Decimal(1)}.items():
            have[k] = have.get(k, Decimal(0)) + v
        self.index.take({pod["metadata"]["name"]: node}, [self._needs(pod)])

    def overcommitted(self, node: NodeInfo) -> bool:
        used = self.used.get(node.name) or {}
        return any(amount > node.allocatable.get(res, Decimal(0)) for res, amount in used.items())

    def plan(
        self,
        pods: Sequence[Obj],
        batch: int,
        avoid: Iterable[str] = (),
        within: str | None = None,
        freed: Sequence[Obj] = (),
    ) -> Placed | Unplaceable:
        """The planner's domain for these pods (only `within`, when given), their own pins left out;
        `freed`: bound pods whose room counts as free (terminating)."""
        needs = [self._needs(p) for p in pods]
        if not freed:
            return self.index.place(needs, [self.key], batch, avoid, within)
        used = {k: dict(v) for k, v in self.used.items()}
        for p in freed:
            have = used.setdefault(str(p["spec"]["nodeName"]), {})
            for res, amount in {**pod_requests(p), "pods": Decimal(1)}.items():
                have[res] = have.get(res, Decimal(0)) - amount
        return Cluster(self.infos, used).place(needs, [self.key], batch, avoid, within)

    def _needs(self, pod: Obj) -> PodNeeds:
        needs = pod_needs(pod)
        if gated(pod):
            return needs
        # a released member carries the pins of its old domain (this code's): a move plans without them
        selector = {k: v for k, v in needs.node_selector.items() if k not in (self.key, HOSTNAME)}
        return PodNeeds(needs.name, needs.requests, needs.tolerations, selector, needs.affinity_terms)

    def host_of(self, node: str) -> str | None:
        info = self.by_name.get(node)
        return info.labels.get(HOSTNAME) if info is not None else None


def _broken(b: BatchState, c: _Cluster) -> tuple[str | None, list[str]]:
    """The batch's domain (from members bound or released there) and why it can no longer hold it."""
    key = c.key
    domains: set[str] = set()
    why: list[str] = []
    for pod in b.members:
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if node:
            info = c.by_name.get(node)
            if info is None:
                why.append(f"node {node} is gone")
                if key in (spec.get("nodeSelector") or {}):  # the domain it was released into
                    domains.add(spec["nodeSelector"][key])
            elif key not in info.labels:
                why.append(f"node {node} no longer has the label {key}")
            else:
                domains.add(info.labels[key])
            continue
        if gated(pod):
            continue
        selector = spec.get("nodeSelector") or {}
        if key in selector:
            domains.add(selector[key])
        host = selector.get(HOSTNAME)
        name = pod["metadata"].get("name", "")
        if host is not None:
            target = c.by_host.get(host)
            if target is None:
                why.append(f"{name} is pinned to node {host}, which is gone")
            elif not target.schedulable:
                why.append(f"{name} is pinned to node {host}, which is cordoned or not ready")
            elif c.overcommitted(target):
                why.append(f"{name} is pinned to node {host}, which has no room left for it")
    if len(domains) > 1:
        why.append(f"its pods are split across {key} domains {', '.join(sorted(domains))}")
    domain = next(iter(domains)) if len(domains) == 1 else None
    if domain is not None and not any(i.schedulable and i.labels.get(key) == domain for i in c.infos):
        why.append(f"every node of {key}={domain} is gone, cordoned or not ready")
    return domain, list(dict.fromkeys(why))


def decide(
    rbg: RoleBasedGroup,
    coord: Coordination,
    aff: AffinityScheduling,
    pods: Sequence[Obj],
    nodes: Sequence[Obj],
    used: Used,
    *,
    total: int | None = None,
    avoid: Iterable[str] = (),
) -> Decision:
    """What to release, replace and report for the coordination's batches this pass.

    `total`: the number of batches when it is not replicas / ratio (exclusive topology: one); `avoid`:
    domains no batch may use (other groups')."""
    key, tkey = batch_label(coord.name), aff.topology_key
    roles = set(coord.roles)
    exclusive = coord.name == EXCLUSIVE
    per_batch = sum(aff.ratios.get(r, 0) for r in roles)
    replicas = {r.name: r.replicas for r in rbg.spec.roles}
    partitions = {r.name: role_partition(r) for r in rbg.spec.roles}
    if total is None:
        total = min((replicas.get(r, 0) // aff.ratios[r] for r in roles if aff.ratios.get(r)), default=0)
    kinds = {r.name: r.workload.kind for r in rbg.spec.roles}
    batches = [BatchState(k) for k in range(total)]
    stale: dict[int, list[Obj]] = {}
    leaving: dict[int, list[Obj]] = {}  # terminating members: their room comes back
    ungate: list[Obj] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        role = (meta.get("labels") or {}).get(ROLE_NAME)
        if role not in roles or not aff.ratios.get(str(role)):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue  # finished (an evicted Deployment pod stays as a Failed object): not a member
        ordinal = ordinal_of(pod)
        if exclusive:
            k = 0
        elif ordinal is None:
            continue
        else:
            k = ordinal // aff.ratios[str(role)]
        if k >= total:
            continue  # scaled away: the workload deletes it
        current = is_current(pod, rbg, coord.name) and (meta.get("labels") or {}).get(key) == str(k)
        if meta.get("deletionTimestamp"):
            if current and (pod.get("spec") or {}).get("nodeName"):
                leaving.setdefault(k, []).append(pod)
            continue
        if current:
            batches[k].members.append(pod)
        elif kinds.get(str(role)) == "StatefulSet":  # only their pods can be replaced batch by batch (D27)
            stale.setdefault(k, []).append(pod)
        elif gated(pod):
            ungate.append(pod)

    out = Decision(batches=batches, ungate=ungate)
    cluster = _Cluster(nodes, used, tkey)
    taken = set(avoid)
    for b in batches:
        b.domain, _ = _broken(b, cluster)
        if b.domain is not None:
            taken.add(b.domain)
        bound = [p for p in b.members if (p.get("spec") or {}).get("nodeName")]
        if len(b.members) == per_batch and len(bound) == per_batch and not stale.get(b.index):
            b.phase = "Bound"
        elif b.domain is not None:
            b.phase = "Planned"

    def in_flight(x: BatchState) -> bool:
        """An earlier batch a Sequential release waits for: its pods are being created or placed."""
        if not x.members:
            return not stale.get(x.index)  # nothing exists yet (old pods of an earlier layout do not block)
        return any(not (p.get("spec") or {}).get("nodeName") for p in x.members)

    blocked = False
    for b in batches:
        if blocked:
            if any(gated(p) for p in b.members):
                b.message = "waiting for the batches before it (Sequential)"
            continue
        if stale.get(b.index):
            _replace(b, stale[b.index], partitions, out)
            blocked = aff.batch_mode == "Sequential" and in_flight(b)
            continue
        waiting = [p for p in b.members if gated(p)]
        domain, why = _broken(b, cluster)
        unbound = [p for p in b.members if not gated(p) and not (p.get("spec") or {}).get("nodeName")]
        if not waiting and not unbound:
            why = []  # every member runs: a cordon, a NotReady blip or a relabel moves nothing (D27)
        if domain is not None and not why and waiting:
            result = cluster.plan(waiting, b.index, within=domain)
            if isinstance(result, Placed):
                _release(out, cluster, waiting, domain, result.nodes)
            elif leaving.get(b.index) and isinstance(
                cluster.plan(waiting, b.index, within=domain, freed=leaving[b.index]), Placed
            ):
                # members of the batch still terminating hold the room (a Deployment's rollout): wait
                b.message = (
                    f"waiting for {len(leaving[b.index])} terminating pods of the batch to free their room"
                )
                b.waiting = True  # a pod stuck terminating (a finalizer) turns the batch Stuck
            else:
                why.append(f"{tkey}={domain} has no room for {len(waiting)} recreated pods ({result.reason})")
        if b.waiting:
            pass  # waiting for its own terminating members
        elif why:
            _move(b, domain, why, cluster, taken, out)
        elif domain is not None:
            _report_scheduler(b)
        elif waiting or b.members:
            _plan_new(b, waiting, per_batch, cluster, taken, out)
        if aff.batch_mode == "Sequential" and in_flight(b):
            blocked = True
    return out


def _release(
    out: Decision, cluster: _Cluster, pods: Sequence[Obj], domain: str, nodes: Mapping[str, str]
) -> None:
    for p in pods:
        node = nodes[p["metadata"]["name"]]
        out.release.append((p, domain, cluster.host_of(node)))
        out.assigned[p["metadata"]["name"]] = node
        cluster.take(node, p)  # the next batch of this pass must not count this capacity again


def _replace(b: BatchState, old: list[Obj], partitions: Mapping[str, int], out: Decision) -> None:
    """Members of an earlier layout: replaced together once the new layout has reached the batch (one of
    its members exists gated); those a partition keeps run as they were (let go if gated)."""
    held, replaceable = [], []
    for p in old:
        role = str((p["metadata"].get("labels") or {}).get(ROLE_NAME))
        ordinal = ordinal_of(p)
        if _statefulset_pod(p) and ordinal is not None and ordinal >= partitions.get(role, 0):
            replaceable.append(p)
        else:
            held.append(p["metadata"].get("name", ""))
            if gated(p):
                out.ungate.append(p)
    if not any(gated(p) for p in b.members) and not any(gated(p) for p in replaceable):
        b.message = f"{len(old)} pods of batch {b.index} still run under an earlier layout"
        return
    for p in replaceable:
        out.delete.append((p, f"replaced with the rest of batch {b.index}, so it is placed whole"))
    if held:
        b.message = (
            f"batch {b.index} waits for {', '.join(held)}: created under an earlier layout and kept by the "
            "role's partition or its workload, they cannot be replaced"
        )
        b.waiting = True
    else:
        b.message = (
            f"replacing {len(old)} pods created under an earlier layout, so batch {b.index} is placed whole"
        )


def _move(
    b: BatchState, domain: str | None, why: list[str], cluster: _Cluster, taken: set[str], out: Decision
) -> None:
    """The batch's domain can no longer hold it: move it whole when another domain can."""
    reason = "; ".join(why)
    here = f"{cluster.key}={domain}" if domain else "its domain"
    result = cluster.plan(b.members, b.index, avoid=taken | ({domain} if domain else set()))
    if not isinstance(result, Placed):
        b.message = (
            f"{here} can no longer hold batch {b.index} ({reason}); no other domain can: {result.reason}"
        )
        b.waiting = True
        return
    running = [p for p in b.members if not gated(p)]
    for p in running:
        out.delete.append((p, f"batch {b.index} leaves {here}: {reason}"))
    out.moved.append((b.index, domain or "", reason))
    taken.add(result.domain)  # no other batch of this pass is planned where this one is going
    b.message = f"moving from {here} ({reason}): {len(running)} pods replaced, to be placed whole"
    b.domain, b.phase = None, "Pending"


def _report_scheduler(b: BatchState) -> None:
    """Released into its domain: bound, or waiting for the scheduler (whose refusal is reported)."""
    for p in b.members:
        if not gated(p) and not (p.get("spec") or {}).get("nodeName"):
            word = _unschedulable(p)
            if word is not None:
                b.message = f"{p['metadata'].get('name', '')} is not scheduled in {b.domain}: {word}"
                b.waiting = True
                return


def _plan_new(
    b: BatchState, waiting: list[Obj], per_batch: int, cluster: _Cluster, taken: set[str], out: Decision
) -> None:
    if len(b.members) < per_batch:
        b.message = f"waiting for {per_batch - len(b.members)} more pods of the batch to be created"
        b.waiting = True
        return
    if len(waiting) < len(b.members):
        return  # released members without a domain: never happens with the pins this code writes
    result = cluster.plan(waiting, b.index, avoid=taken)
    if isinstance(result, Placed):
        b.domain, b.phase = result.domain, "Planned"
        taken.add(result.domain)
        out.planned.append((b.index, result.domain))
        _release(out, cluster, waiting, result.domain, result.nodes)
    else:
        b.message = result.reason
        b.waiting = True
