"""Pod templates checked by the API server's own Pod validation before anything is made from them.

A CRD embeds the published PodTemplateSpec schema, which leaves optional what Pod validation requires (a
container's `image`) and cannot know which resource names are valid; the API server would refuse the
workload made from such a template only after the owning object was stored (decision D16). So the
admission webhook of the owning object creates each template as a `PodTemplate` with `dryRun=All`:
validated exactly as a workload's template is, stored nowhere, named by `generateName` so that no
existing object can collide with it. Generic: the caller says where each template sits in its object
and which volumes the workload adds to the pods (claim templates, an operator's own), which the dry run
supplies as `emptyDir` stand-ins so that a mount of them is not refused.

Only the template's own field errors deny: a policy that refuses PodTemplates (a validating webhook or
admission policy of the cluster's), a 403, a timeout or a transport failure says nothing about the
workload, so it gives a warning and the object is checked as before, when its workload is created.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rbg.runtime.errors import ApiError
from rbg.runtime.objects import PODTEMPLATE, Obj

if TYPE_CHECKING:
    from rbg.runtime.client import Kube

#: the field a PodTemplate's errors are reported under, replaced by where the template sits
_ROOT = "template"


@dataclass(frozen=True)
class Template:
    """A pod template and where it sits in the object under admission, e.g. `spec.roles[0].template`;
    `note` says which pods it makes when that is not plain from the path (e.g. a LeaderWorkerSet's
    leader template, merged from the role's template and a patch)."""

    path: str
    body: Obj
    note: str = ""
    #: volumes the workload adds to these pods outside the template (claim templates, the operator's)
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checked:
    errors: list[str]
    warnings: list[str]


#: how long a template the API server passed is trusted without asking again, and how many are kept
PASS_TTL = 300.0
PASS_CACHE_SIZE = 1024


class Verdicts:
    """Dry runs shared: one at a time per template (concurrent admissions of the same template wait for
    the same answer), and a pass remembered for `ttl` seconds (at most `size` of them, the oldest
    forgotten first), so that a RoleBasedGroupSet's N groups, or N groups applied from one manifest, cost
    one dry run per distinct template, not N. Refusals and failures are not remembered: the next
    admission asks again. A pass is trusted that long: an API server upgraded since might refuse it,
    and then the workload's creation reports it (D16)."""

    def __init__(self, ttl: float = PASS_TTL, size: int = PASS_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._passed: OrderedDict[str, float] = OrderedDict()  # key -> when it passed (monotonic)
        self._running: dict[str, asyncio.Future[list[str]]] = {}

    async def run(self, key: str, check: Callable[[], Awaitable[list[str]]]) -> list[str]:
        passed = self._passed.get(key)
        if passed is not None and time.monotonic() - passed < self.ttl:
            self._passed.move_to_end(key)
            return []
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(check())
            self._running[key] = running
            running.add_done_callback(lambda done: self._done(key, done))
        # one waiter's timeout does not cancel the others' answer
        return await asyncio.shield(running)

    def _done(self, key: str, done: asyncio.Future[list[str]]) -> None:
        self._running.pop(key, None)
        if done.cancelled() or done.exception() is not None or done.result():
            return
        self._passed[key] = time.monotonic()
        self._passed.move_to_end(key)
        while len(self._passed) > self.size:
            self._passed.popitem(last=False)


async def check_templates(
    kube: Kube,
    namespace: str,
    templates: Sequence[Template],
    *,
    within: float,
    verdicts: Verdicts | None = None,
) -> Checked:
    """Errors naming the field of every template the API server refuses (422/400). A template that could
    not be checked within `within` seconds (API server busy, no permission) gives a warning, not a
    denial: the object is then checked as before D16, by the workload's creation (status and events).
    `verdicts`: dry runs shared with other admissions (a pass remembered)."""
    distinct: dict[str, Template] = {}
    for t in templates:
        key = [namespace, t.path, t.note, t.body, list(t.volumes)]
        distinct.setdefault(json.dumps(key, sort_keys=True, separators=(",", ":")), t)
    if not distinct:
        return Checked([], [])

    def one(key: str, t: Template) -> Awaitable[list[str]]:
        if verdicts is None:
            return _check(kube, namespace, t)
        return verdicts.run(key, lambda: _check(kube, namespace, t))

    try:
        async with asyncio.timeout(within):
            results = await asyncio.gather(*(one(k, t) for k, t in distinct.items()), return_exceptions=True)
    except TimeoutError:
        return Checked([], [f"pod templates not checked by the API server: no answer in {within:.0f}s"])
    errors: list[str] = []
    warnings: list[str] = []
    for result in results:
        if isinstance(result, ApiError):  # a 403, a policy's denial, a transport failure (status 0)
            warnings.append(f"pod templates not checked by the API server: {result}")
        elif isinstance(result, BaseException):
            raise result
        else:
            errors += result
    return Checked(errors, sorted(set(warnings)))


async def _check(kube: Kube, namespace: str, template: Template) -> list[str]:
    body = {
        "apiVersion": PODTEMPLATE.api_version,
        "kind": PODTEMPLATE.kind,
        "metadata": {"generateName": "dry-run-", "namespace": namespace},
        "template": with_stand_ins(template.body, template.volumes),
    }
    try:
        await kube.create(body, dry_run=True)
    except ApiError as exc:
        found = refusals(template, exc) if exc.invalid else None
        if found is None:
            raise
        return found
    return []


def with_stand_ins(body: Obj, volumes: Sequence[str]) -> Obj:
    """The template with an `emptyDir` volume for each name in `volumes` it does not declare itself."""
    spec = body.get("spec") or {}
    declared = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict)}
    missing = [{"name": n, "emptyDir": {}} for n in volumes if n not in declared]
    if not missing:
        return body
    return {**body, "spec": {**spec, "volumes": [*(spec.get("volumes") or []), *missing]}}


#: what an answer says when a policy of the cluster's refused the request, not the Pod validation
_POLICY = ("admission webhook", "ValidatingAdmissionPolicy", "denied request", "denied the request")


def refusals(template: Template, exc: ApiError) -> list[str] | None:
    """The API server's field errors on a PodTemplate, each under the template's own path; None when the
    refusal is not the template's (a policy's denial, or a 422 about other fields)."""
    note = f" ({template.note})" if template.note else ""
    fields = [(f, m) for f, m in exc.fields if f == _ROOT or f.startswith((f"{_ROOT}.", f"{_ROOT}["))]
    if not fields:
        if exc.fields or any(p in exc.message for p in _POLICY):
            return None
        return [f"{template.path}: {exc.message}{note}"]
    return [f"{template.path}{f[len(_ROOT) :]}: {m}{note}" for f, m in fields]
