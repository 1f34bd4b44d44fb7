"""What every kind's revisions share (RoleBasedGroup: rbg.group.revision; LeaderWorkerSet:
rbg.leaderworker.revision): FNV hashes spelled as Kubernetes spells them, and history pruning."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand.SafeEncodeString
_OFFSET, _PRIME, _MASK = 0x811C9DC5, 0x01000193, 0xFFFFFFFF


def fnv32(data: bytes) -> int:
    """FNV-1 (32 bit): multiply, then xor (Go's hash/fnv New32, what LeaderWorkerSet hashes with)."""
    h = _OFFSET
    for byte in data:
        h = ((h * _PRIME) & _MASK) ^ byte
    return h


def fnv32a(data: bytes) -> int:
    """FNV-1a (32 bit): xor, then multiply (Go's hash/fnv New32a, what RoleBasedGroup hashes with)."""
    h = _OFFSET
    for byte in data:
        h = ((h ^ byte) * _PRIME) & _MASK
    return h


def safe_encode(h: int) -> str:
    """A hash's decimal digits in the vowel-free alphabet (a label value that never spells a word)."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in str(h))


def safe_hash(document: Any) -> str:
    """FNV-1a (32 bit) of the document's canonical JSON, spelled as controller-revision-hash is."""
    return safe_encode(fnv32a(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()))


def prune(ordered: Sequence[Any], keep: Any, limit: int) -> list[Any]:
    """The revisions to delete: `ordered` is oldest first; the newest `limit` are kept, `keep` (the one in
    use) always and counted among them."""
    older = [r for r in ordered if r is not keep]
    return list(older[: max(0, len(older) - max(0, limit - 1))])
