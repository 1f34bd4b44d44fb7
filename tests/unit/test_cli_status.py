from rbg.cli.status import bar, render


def test_bar_is_sixteen_wide_and_proportional() -> None:
    assert bar(0, 4) == " " * 16
    assert bar(1, 2) == "█" * 8 + " " * 8
    assert bar(2, 2) == "█" * 16
    assert bar(0, 0) == "█" * 16  # a role scaled to zero is complete


def test_render_lists_roles_in_spec_order_with_condition_and_summary() -> None:
    obj = {
        "metadata": {"name": "pd", "namespace": "ns"},
        "spec": {"roles": [{"name": "router", "replicas": 1}, {"name": "prefill", "replicas": 4}]},
        "status": {
            "roleStatuses": [{"name": "prefill", "readyReplicas": 1}, {"name": "router", "readyReplicas": 1}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "RoleNotReady",
                    "message": "roles not ready: prefill (1/4)",
                },
                {"type": "Progressing", "status": "True", "reason": "RolesProgressing", "message": "x"},
            ],
        },
    }
    assert render(obj).splitlines() == [
        "RoleBasedGroup ns/pd",
        "  router   1/1  [████████████████] 100%",
        "  prefill  1/4  [████            ]  25%",
        "Ready: False (RoleNotReady: roles not ready: prefill (1/4))",
        "Progressing: RolesProgressing: x",
        "Summary: 2 roles | 2/5 replicas ready",
    ]


def test_render_without_status() -> None:
    out = render({"metadata": {"name": "pd", "namespace": "ns"}, "spec": {"roles": [{"name": "a"}]}})
    assert "Ready: Unknown (no status yet)" in out
    assert "  a     0/1" in out
