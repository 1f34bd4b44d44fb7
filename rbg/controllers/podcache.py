"""The operator's one cache of pods: every pod of the cluster, slimmed (rbg.coordination.resources.slim_pod)
to what placement and failure recovery read. Every controller that reads pods shares it (a second cache
of pods would double the memory and the watch traffic)."""

from __future__ import annotations

from rbg.coordination import resources
from rbg.group import names
from rbg.runtime.informer import Informer
from rbg.runtime.manager import Manager
from rbg.runtime.objects import POD, Obj, trim


def slim(pod: Obj) -> Obj:
    return resources.slim_pod(trim(pod))


def pods(manager: Manager) -> Informer:
    """The shared pod informer of this manager, indexed by group."""
    informer = manager.informer(POD, transform=slim)
    informer.index_label(names.GROUP_NAME)
    return informer


def of_group(informer: Informer, namespace: str, group: str) -> list[Obj]:
    return informer.by_label(names.GROUP_NAME, namespace, group)
