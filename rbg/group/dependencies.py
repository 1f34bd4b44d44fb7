"""Role start order from `dependencies`: topological levels, unknown roles and cycles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class UnknownDependency:
    role_index: int
    dep_index: int
    role: str
    dependency: str


@dataclass(frozen=True)
class Cycle:
    path: tuple[str, ...]  # first == last: ("a", "b", "a")

    def __str__(self) -> str:
        return " -> ".join(self.path)


def unknown_dependencies(deps: Sequence[tuple[str, Sequence[str]]]) -> list[UnknownDependency]:
    names = {name for name, _ in deps}
    return [
        UnknownDependency(i, j, name, d)
        for i, (name, ds) in enumerate(deps)
        for j, d in enumerate(ds)
        if d not in names
    ]


def find_cycle(deps: Mapping[str, Sequence[str]]) -> Cycle | None:
    """A dependency cycle, reported from its alphabetically first role, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> Cycle | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(deps.get(node, ())):
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                return Cycle((*path[path.index(nxt) :], nxt))
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(deps):
        if start not in state and (found := visit(start)):
            return found
    return None


def levels(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Roles grouped by start level (a role comes after all it depends on), alphabetical in a level.

    Unknown dependencies are ignored here (validation reports them); a cycle raises ValueError.
    """
    remaining = {r: {d for d in ds if d in deps} for r, ds in deps.items()}
    out: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        ready = sorted(r for r, ds in remaining.items() if ds <= done)
        if not ready:
            raise ValueError(f"dependency cycle: {find_cycle(deps)}")
        out.append(ready)
        done.update(ready)
        for r in ready:
            del remaining[r]
    return out
