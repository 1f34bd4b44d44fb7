"""The typed admission adapter (rbg.runtime.admission): AdmissionReview request -> (new, old) models ->
a pure validator -> Verdict; model errors become field-path messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rbg.runtime.admission import field_error, old_object, typed


class Item(BaseModel):
    name: str
    size: int = 1


class Spec(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    items: list[Item] = Field(default_factory=list)
    max_size: int = Field(10, alias="maxSize")


class Widget(BaseModel):
    spec: Spec


Seen = list[tuple[Widget, Widget | None]]


def recording(
    seen: Seen, errors: tuple[str, ...] = (), warnings: tuple[str, ...] = ()
) -> Callable[[Widget, Widget | None], tuple[list[str], list[str]]]:
    """A validator that records what it was handed and answers `errors`, `warnings`."""

    def check(new: Widget, old: Widget | None) -> tuple[list[str], list[str]]:
        seen.append((new, old))
        return list(errors), list(warnings)

    return check


WIDGET = {"spec": {"items": [{"name": "a"}], "maxSize": 3}}


async def test_a_create_hands_the_new_model_and_no_old_one() -> None:
    seen: Seen = []
    verdict = await typed(Widget, recording(seen))(
        {"operation": "CREATE", "object": WIDGET, "oldObject": WIDGET}
    )
    assert verdict.errors == []
    assert verdict.warnings == []
    assert verdict.patch is None
    ((new, old),) = seen
    assert new == Widget.model_validate(WIDGET)
    assert old is None


async def test_an_update_hands_both_models() -> None:
    seen: Seen = []
    before = {"spec": {"items": [], "maxSize": 5}}
    await typed(Widget, recording(seen))({"operation": "UPDATE", "object": WIDGET, "oldObject": before})
    assert seen == [(Widget.model_validate(WIDGET), Widget.model_validate(before))]


async def test_an_unreadable_or_missing_old_object_is_none() -> None:
    seen: Seen = []
    handler = typed(Widget, recording(seen))
    await handler({"operation": "UPDATE", "object": WIDGET, "oldObject": {"spec": {"maxSize": "many"}}})
    await handler({"operation": "UPDATE", "object": WIDGET})
    await handler({"operation": "UPDATE", "object": WIDGET, "oldObject": {}})
    assert [old for _, old in seen] == [None, None, None]


async def test_the_validators_errors_deny_and_its_warnings_pass_through() -> None:
    seen: Seen = []
    handler = typed(Widget, recording(seen, ("spec.a: bad", "spec.b: worse"), ("spec.c: not acted on",)))
    verdict = await handler({"operation": "CREATE", "object": WIDGET})
    assert verdict.errors == ["spec.a: bad", "spec.b: worse"]
    assert verdict.warnings == ["spec.c: not acted on"]


async def test_iterables_from_the_validator_become_lists() -> None:
    handler = typed(Widget, lambda new, old: ((f"spec.items[{i}]: x" for i in range(2)), ("w",)))
    verdict = await handler({"operation": "CREATE", "object": WIDGET})
    assert verdict.errors == ["spec.items[0]: x", "spec.items[1]: x"]
    assert verdict.warnings == ["w"]


async def test_an_object_the_model_cannot_read_is_denied_with_the_first_errors_field_path() -> None:
    seen: Seen = []
    handler = typed(Widget, recording(seen))
    bad = {"spec": {"items": [{"name": "a"}, {"size": "big"}], "maxSize": "x"}}
    verdict = await handler({"operation": "CREATE", "object": bad})
    assert verdict.errors == ["spec.items[1].name: Field required"]
    assert verdict.warnings == []
    assert (await handler({"operation": "CREATE"})).errors == ["spec: Field required"]
    assert seen == []


def test_field_error_writes_the_path_as_the_validators_do() -> None:
    with pytest.raises(ValidationError) as caught:
        Widget.model_validate({"spec": {"maxSize": "x"}})
    assert field_error(caught.value) == (
        "spec.maxSize: Input should be a valid integer, unable to parse string as an integer"
    )
    with pytest.raises(ValidationError) as caught:
        Widget.model_validate({"spec": {"items": [{"name": "a"}, {"size": 2}]}})
    assert field_error(caught.value) == "spec.items[1].name: Field required"


def test_old_object_reads_only_updates() -> None:
    assert old_object(Widget, {"operation": "DELETE", "oldObject": WIDGET}) is None
    assert old_object(Widget, {"operation": "UPDATE", "oldObject": WIDGET}) == Widget.model_validate(WIDGET)


def test_a_pod_templates_refusal_is_named_where_the_template_sits() -> None:
    from rbg.runtime.dryrun import Template, refusals
    from rbg.runtime.errors import ApiError

    status = {
        "kind": "Status",
        "code": 422,
        "reason": "Invalid",
        "message": 'PodTemplate "dry-run-x" is invalid: [...]',
        "details": {
            "causes": [
                {"field": "template.spec.containers[0].image", "message": "Required value"},
                {"field": "metadata.generateName", "message": "ignored: not the template's"},
            ]
        },
    }
    exc = ApiError.from_status(status)
    leader = Template("spec.roles[1].template", {}, "the leader's pods")
    assert refusals(leader, exc) == [
        "spec.roles[1].template.spec.containers[0].image: Required value (the leader's pods)"
    ]
    # no field of the template among the causes (e.g. an undecodable quantity): the whole message
    bare = ApiError(400, "BadRequest", "quantities must match the regular expression")
    assert refusals(Template("spec.x", {}), bare) == ["spec.x: quantities must match the regular expression"]


def test_a_policys_denial_of_the_dry_run_is_not_the_templates_refusal() -> None:
    from rbg.runtime.dryrun import Template, refusals
    from rbg.runtime.errors import ApiError

    where = Template("spec.roles[0].template", {})
    webhook = ApiError(400, "BadRequest", 'admission webhook "deny.example.com" denied the request: no')
    policy = ApiError(
        422, "Invalid", "ValidatingAdmissionPolicy 'no-templates' with binding 'b' denied request: no"
    )
    elsewhere = ApiError(422, "Invalid", "bad", fields=(("metadata.generateName", "too long"),))
    assert [refusals(where, e) for e in (webhook, policy, elsewhere)] == [None, None, None]


def test_the_volumes_a_workload_adds_are_stood_in_for_unless_declared() -> None:
    from rbg.runtime.dryrun import with_stand_ins

    body = {"spec": {"containers": [{"name": "c"}], "volumes": [{"name": "own", "configMap": {"name": "x"}}]}}
    out = with_stand_ins(body, ("own", "cache"))
    assert out["spec"]["volumes"] == [
        {"name": "own", "configMap": {"name": "x"}},
        {"name": "cache", "emptyDir": {}},
    ]
    assert body["spec"]["volumes"] == [{"name": "own", "configMap": {"name": "x"}}]  # not changed
    assert with_stand_ins({"spec": {}}, ()) == {"spec": {}}


def test_a_dry_run_that_fails_for_other_reasons_warns_and_denies_nothing() -> None:
    import asyncio

    from rbg.runtime.dryrun import Template, check_templates
    from rbg.runtime.errors import ApiError

    class Refusing:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        async def create(self, obj: dict[str, object], dry_run: bool = False) -> dict[str, object]:
            raise self.exc

    templates = [Template("spec.roles[0].template", {"spec": {"containers": []}})]
    for exc in (
        ApiError(403, "Forbidden", "cannot create podtemplates"),
        ApiError(400, "BadRequest", 'admission webhook "x" denied the request: no'),
        ApiError(0, "ClientOSError", "reset by peer"),  # the client's transport failures
    ):
        checked = asyncio.run(check_templates(Refusing(exc), "ns", templates, within=5))  # type: ignore[arg-type]
        assert checked.errors == [], exc
        (warning,) = checked.warnings
        assert str(exc) in warning
    invalid = ApiError(422, "Invalid", "x", fields=(("template.spec.containers", "Required value"),))
    checked = asyncio.run(check_templates(Refusing(invalid), "ns", templates, within=5))  # type: ignore[arg-type]
    assert checked.errors == ["spec.roles[0].template.spec.containers: Required value"]


def test_dry_runs_are_shared_while_running_and_a_pass_is_remembered_for_a_while() -> None:
    import asyncio
    from collections.abc import Awaitable

    from rbg.runtime.dryrun import Verdicts

    calls: list[str] = []

    def check(answer: list[str], key: str) -> Callable[[], Awaitable[list[str]]]:
        async def run() -> list[str]:
            calls.append(key)
            await asyncio.sleep(0.01)
            return answer

        return run

    async def scenario() -> None:
        verdicts = Verdicts(ttl=60, size=2)
        # twenty admissions of one template at once: one dry run, one answer for all
        answers = await asyncio.gather(*(verdicts.run("a", check([], "a")) for _ in range(20)))
        assert answers == [[]] * 20
        assert calls == ["a"]
        assert await verdicts.run("a", check(["never asked"], "a")) == []
        assert calls == ["a"]
        # a refusal is not remembered: asked again each time
        for _ in range(2):
            assert await verdicts.run("bad", check(["x: Required value"], "bad")) == ["x: Required value"]
        assert calls == ["a", "bad", "bad"]
        # the oldest pass is forgotten beyond `size`
        await verdicts.run("b", check([], "b"))
        await verdicts.run("c", check([], "c"))
        await verdicts.run("a", check([], "a"))
        assert calls == ["a", "bad", "bad", "b", "c", "a"]
        # past its time a pass is asked again
        verdicts._passed["c"] -= 61
        await verdicts.run("c", check([], "c"))
        assert calls[-1] == "c"
        assert len(calls) == 7
        # a waiter that gives up does not cancel the dry run the others wait for
        slow = asyncio.ensure_future(verdicts.run("d", check([], "d")))
        other = asyncio.ensure_future(verdicts.run("d", check([], "d")))
        await asyncio.sleep(0)
        slow.cancel()
        assert await other == []
        assert calls.count("d") == 1

    asyncio.run(scenario())
