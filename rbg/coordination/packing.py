"""The exact packing search inside one domain: which node takes which pods, within a step budget.
Pure, over integers (the planner converts resources to whole units first); rbg.coordination.planner
calls it per domain, in best-fit order."""

from __future__ import annotations

from collections.abc import Iterable


def pack(
    needs: list[list[tuple[int, int]]], counts: list[int], admit: list[int], left: list[list[int]], steps: int
) -> tuple[list[int] | None, int, bool]:
    """Pods of shapes 0, 1, … (counts[s] each, needing needs[s]: (resource, amount) pairs) onto nodes
    with room `left` (admit[x]: the shapes node x admits, a bit each): the node of every pod (shape by
    shape), the steps used, and whether the budget ran out before an answer.

    A search over nodes, tightest first: how many pods of each shape the node takes (as many of the
    first shapes as fit, first), then the next node with what is left. Alike nodes take non-increasing
    shares; a (node, pods left) state refuted once is not searched again; a branch stops as soon as the
    nodes still untouched lack the room or the slots (pods of a shape a node fits alone) the pods left
    need. A step is a state or a share looked at."""
    k, shapes = len(left), len(needs)
    width = len(left[0]) if left else 0
    order = sorted(range(k), key=lambda x: (left[x], admit[x]))
    room_of, admit_of = [left[x] for x in order], [admit[x] for x in order]
    alike = [i > 0 and room_of[i] == room_of[i - 1] and admit_of[i] == admit_of[i - 1] for i in range(k)]
    cap = [
        [
            max(0, min(room_of[i][j] // a for j, a in needs[s])) if admit_of[i] >> s & 1 else 0
            for s in range(shapes)
        ]
        for i in range(k)
    ]
    slots = [[0] * shapes for _ in range(k + 1)]  # nodes i… : pods of each shape they could take
    room = [[0] * width for _ in range(k + 1)]  # nodes i… that take any pod: their room
    for i in range(k - 1, -1, -1):
        slots[i] = [slots[i + 1][s] + min(cap[i][s], counts[s]) for s in range(shapes)]
        usable = any(cap[i])
        room[i] = [room[i + 1][j] + (max(room_of[i][j], 0) if usable else 0) for j in range(width)]
    full = [[dict(needs[s]).get(j, 0) for j in range(width)] for s in range(shapes)]
    budget, refuted, share = [steps], set(), [(0,) * shapes] * k

    class _Spent(Exception):
        pass

    def shares(i: int, rest: tuple[int, ...], limit: tuple[int, ...] | None) -> Iterable[tuple[int, ...]]:
        """What node i can take of `rest`, largest first (lexicographically, not above `limit`)."""
        free_, bits, u = list(room_of[i]), admit_of[i], [0] * shapes

        def walk(s: int, tight: bool) -> Iterable[tuple[int, ...]]:
            if s == shapes:
                yield tuple(u)
                return
            top = (
                max(0, min(rest[s], *(free_[j] // a for j, a in needs[s])))
                if bits >> s & 1 and rest[s]
                else 0
            )
            if tight and limit is not None:
                top = min(top, limit[s])
            for c in range(top, -1, -1):
                u[s] = c
                for j, a in needs[s]:
                    free_[j] -= a * c
                yield from walk(s + 1, tight and limit is not None and c == limit[s])
                for j, a in needs[s]:
                    free_[j] += a * c
            u[s] = 0

        return walk(0, True)

    def dfs(i: int, rest: tuple[int, ...], prev: tuple[int, ...] | None) -> bool:
        if not any(rest):
            share[i:] = [(0,) * shapes] * (k - i)
            return True
        if i == k:
            return False
        budget[0] -= 1
        if budget[0] < 0:
            raise _Spent
        limit = prev if alike[i] else None
        state = (i, rest, limit)
        if state in refuted:
            return False
        if all(slots[i][s] >= rest[s] for s in range(shapes)) and all(
            room[i][j] >= sum(rest[s] * full[s][j] for s in range(shapes)) for j in range(width)
        ):
            for u in shares(i, rest, limit):
                budget[0] -= 1
                if budget[0] < 0:
                    raise _Spent
                share[i] = u
                if dfs(i + 1, tuple(r - c for r, c in zip(rest, u, strict=True)), u):
                    return True
        refuted.add(state)
        return False

    try:
        ok = dfs(0, tuple(counts), None)
    except _Spent:
        return None, steps, True
    if not ok:
        return None, steps - budget[0], False
    placed = [order[i] for s in range(shapes) for i in range(k) for _ in range(share[i][s])]
    return placed, steps - budget[0], False
