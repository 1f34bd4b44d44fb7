"""Checks of spec.coordination that the CRD schema cannot express; each message names the coordination
and the role it is about."""

from __future__ import annotations

from rbg.api.hub import Coordination, RoleBasedGroup, RoleBasedGroupSpec
from rbg.coordination.batches import EXCLUSIVE_ANNOTATIONS, layout, opts_out, places


def coordination_errors(
    spec: RoleBasedGroupSpec, annotations: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """(field path, message) per problem, for every coordination of the group."""
    exclusive = [k for k in EXCLUSIVE_ANNOTATIONS if (annotations or {}).get(k)]
    placed = [
        i
        for i, c in enumerate(spec.coordination or [])
        if c.strategy and c.strategy.affinity_scheduling and c.kind in (None, "AffinityScheduling")
    ]
    if exclusive and placed:
        return [
            (
                f"spec.coordination[{placed[0]}]",
                f"AffinityScheduling and metadata.annotations[{exclusive[0]}] both place the group's pods: "
                "use one of them",
            )
        ]
    replicas = {r.name: r.replicas for r in spec.roles}
    kinds = {r.name: r.workload.kind for r in spec.roles}
    out: list[tuple[str, str]] = []
    owner: dict[str, str] = {}
    for i, coord in enumerate(spec.coordination or []):
        out += [(f"spec.coordination[{i}]{path}", msg) for path, msg in _one(coord, replicas, kinds)]
        if len(set(coord.roles)) != len(coord.roles):
            out.append(
                (f"spec.coordination[{i}].roles", f'coordination "{coord.name}": a role is listed twice')
            )
        if _placing(coord):
            for role in coord.roles:
                if role in owner and owner[role] != coord.name:
                    out.append(
                        (
                            f"spec.coordination[{i}].roles",
                            f'coordination "{coord.name}": role "{role}" is already placed by coordination '
                            f'"{owner[role]}"; a role is placed by one AffinityScheduling coordination',
                        )
                    )
                owner.setdefault(role, coord.name)
            aff = coord.strategy.affinity_scheduling if coord.strategy else None
            gang = spec.pod_group_policy is not None and spec.pod_group_policy.kube_scheduling is not None
            batches = [
                replicas.get(r, 0) // aff.ratios[r] for r in coord.roles if aff and aff.ratios.get(r, 0) > 0
            ]
            if aff is not None and gang and aff.batch_mode == "Sequential" and max(batches, default=0) > 1:
                out.append(
                    (
                        f"spec.coordination[{i}].strategy.affinityScheduling.batchMode",
                        f'coordination "{coord.name}": batchMode Sequential releases one batch at a time, '
                        "but podGroupPolicy.kubeScheduling admits the group's pods only together: "
                        "use Parallel",
                    )
                )
    # roles whose pods must exist together cannot wait for each other
    together: list[tuple[str, set[str]]] = [
        (f'coordination "{c.name}"', set(c.roles)) for c in spec.coordination or [] if _placing(c)
    ]
    if exclusive:
        together.append(
            (f"metadata.annotations[{exclusive[0]}]", {r.name for r in spec.roles if not opts_out(r)})
        )
    if spec.pod_group_policy is not None and spec.pod_group_policy.kube_scheduling is not None:
        together.append(("spec.podGroupPolicy.kubeScheduling", {r.name for r in spec.roles}))
    for j, spec_role in enumerate(spec.roles):
        for dep in spec_role.dependencies or []:
            for what, names in together:
                if spec_role.name in names and dep in names:
                    out.append(
                        (
                            f"spec.roles[{j}].dependencies",
                            f'role "{spec_role.name}" waits for "{dep}" to be Ready, but {what} starts '
                            "their pods together (neither could start): drop the dependency",
                        )
                    )
    return out


def _placing(coord: Coordination) -> bool:
    return places(coord) is not None


def _one(coord: Coordination, replicas: dict[str, int], kinds: dict[str, str]) -> list[tuple[str, str]]:
    who = f'coordination "{coord.name}"'
    st = coord.strategy
    wanted = {
        "AffinityScheduling": st.affinity_scheduling if st else None,
        "RollingUpdate": st.rolling_update if st else None,
        "Scaling": st.scaling if st else None,
    }
    if coord.type is not None and wanted[coord.type] is None:
        field = {
            "AffinityScheduling": "affinityScheduling",
            "RollingUpdate": "rollingUpdate",
            "Scaling": "scaling",
        }
        return [
            (f".strategy.{field[coord.type]}", f"{who}: type {coord.type} needs strategy.{field[coord.type]}")
        ]
    aff = st.affinity_scheduling if st else None
    if aff is None or coord.kind not in (None, "AffinityScheduling"):
        return []
    out: list[tuple[str, str]] = []
    base = ".strategy.affinityScheduling"
    if len(set(coord.roles)) < 2:
        out.append((".roles", f"{who}: AffinityScheduling places at least two roles together"))
    if not aff.topology_key:
        out.append((f"{base}.topologyKey", f"{who}: topologyKey is required (the node label of the domains)"))
    for name in sorted(set(aff.ratios) - set(coord.roles)):
        out.append(
            (f"{base}.ratios", f'{who}: ratio for role "{name}", which the coordination does not list')
        )
    batches: dict[str, int] = {}
    for name in coord.roles:
        if name not in aff.ratios:
            out.append((f"{base}.ratios", f'{who}: role "{name}" has no ratio'))
            continue
        ratio = aff.ratios[name]
        if ratio <= 0:
            out.append(
                (f"{base}.ratios.{name}", f'{who}: role "{name}" has ratio {ratio}; ratios are positive')
            )
            continue
        if name not in replicas:
            continue  # unknown roles are reported with the roles list
        if kinds[name] != "StatefulSet":
            out.append(
                (
                    ".roles",
                    f'{who}: role "{name}" is a {kinds[name]}; AffinityScheduling places StatefulSet roles '
                    "(a batch is made of pod ordinals)",
                )
            )
            continue
        if replicas[name] % ratio != 0:
            # the design's exact wording
            msg = f'role "{name}" has {replicas[name]} replicas which is not divisible by ratio {ratio}'
            out.append((f"{base}.ratios.{name}", f"{who}: {msg}"))
            continue
        batches[name] = replicas[name] // ratio
    if len(set(batches.values())) > 1:
        detail = ", ".join(f"{n} {replicas[n]}/{aff.ratios[n]} = {b}" for n, b in sorted(batches.items()))
        out.append(
            (
                f"{base}.ratios",
                f"{who}: every role needs the same number of batches (replicas / ratio): {detail}",
            )
        )
    return out


def batch_of(ordinal: int, ratio: int) -> int:
    """Batch k of a role holds its pods with ordinals k*ratio .. k*ratio + ratio - 1."""
    return ordinal // ratio


def update_errors(old: RoleBasedGroup, new: RoleBasedGroup) -> list[tuple[str, str]]:
    """(path, message) for a change of how pods are batched that a running group could never honour.

    A StatefulSet role whose layout changes (a coordination added, its ratios, roles or topology key
    changed, the exclusive topology set) is re-batched: its pods roll and each batch's members are
    replaced together (D27). A Deployment's or LeaderWorkerSet's pods cannot be replaced that way (a
    deleted pod of an old ReplicaSet comes back old), so the group exclusive topology cannot be set or
    changed while such a role runs."""
    out: list[tuple[str, str]] = []
    before = {r.name: r for r in old.spec.roles}
    for role in new.spec.roles:
        was = before.get(role.name)
        if was is None or role.workload.kind == "StatefulSet" or min(was.replicas, role.replicas) == 0:
            continue
        if layout(old, role.name) != layout(new, role.name):
            out.append(
                (
                    "metadata.annotations",
                    f"the group exclusive topology cannot be set, changed or removed while role {role.name} "
                    f"({role.workload.kind}, {was.replicas} replicas) runs: its pods cannot be re-placed "
                    f"batch by batch; scale role {role.name} to 0 first, change the annotation, then scale "
                    "it back",
                )
            )
    return out
