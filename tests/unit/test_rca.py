"""Root-cause ranking (models.incidents.rca): victims upstream rank below the cause; without a graph, evidence decides."""

from __future__ import annotations

import pytest

from models.incidents.rca import evidence_weights, rank_root_causes

GRAPH = {
    "frontend": ("checkout", "cart", "catalog"),
    "checkout": ("payment", "cart"),
    "recommendation": ("catalog",),
    "payment": (),
    "cart": (),
    "catalog": (),
}


def names(ranking: list[tuple[str, float]]) -> list[str]:
    return [s for s, _ in ranking]


def test_a_leaf_cause_ranks_above_its_mildly_anomalous_callers() -> None:
    # payment is the cause; checkout and frontend wait on it (milder); cart, catalog healthy.
    ranking = rank_root_causes({"payment": 8.0, "checkout": 4.0, "frontend": 3.0}, GRAPH)
    assert names(ranking)[:3] == ["payment", "checkout", "frontend"]
    assert abs(sum(p for _, p in ranking) - 1.0) < 1e-9


def test_a_cause_that_is_less_loud_than_its_caller_still_ranks_first() -> None:
    # catalog slowed down; recommendation (its only caller) shows a louder but derived anomaly.
    ranking = rank_root_causes({"catalog": 5.0, "recommendation": 6.0}, GRAPH)
    assert names(ranking)[0] == "catalog"


def test_a_caller_with_healthy_callees_is_its_own_root_cause() -> None:
    ranking = rank_root_causes({"frontend": 9.0, "cart": 0.5}, GRAPH)
    assert names(ranking)[0] == "frontend"


def test_services_without_evidence_rank_last_and_empty_evidence_is_uniform() -> None:
    ranking = rank_root_causes({"cart": 5.0}, GRAPH)
    assert names(ranking)[0] == "cart" and set(names(ranking)) == set(GRAPH)
    uniform = rank_root_causes({}, {"a": ("b",)})
    assert [p for _, p in uniform] == [0.5, 0.5]


def test_bad_evidence_or_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        rank_root_causes({"cart": -1.0}, GRAPH)
    with pytest.raises(ValueError, match="damping"):
        rank_root_causes({"cart": 1.0}, GRAPH, damping=1.0)


def test_a_caller_with_many_mildly_anomalous_callees_is_not_drained_by_their_number() -> None:
    # frontend fails loudly on its own; three of its callees show the same mild background noise.
    # Moving down is as likely as the strongest callee suggests, not as the sum over all of them.
    evidence = {"frontend": 8.0, "cart": 3.0, "catalog": 3.0, "checkout": 3.0}
    assert names(rank_root_causes(evidence, GRAPH))[0] == "frontend"
    assert names(rank_root_causes(evidence, GRAPH, degree_neutral=False))[0] != "frontend"
    # With one anomalous callee nothing changes: the share of moving down is the same either way.
    single = {"frontend": 8.0, "cart": 3.0}
    assert rank_root_causes(single, GRAPH) == rank_root_causes(single, GRAPH, degree_neutral=False)


def test_without_a_call_graph_services_rank_by_their_own_evidence() -> None:
    evidence = {"cart": 2.0, "payment": 6.0, "catalog": 0.0, "checkout": 2.0}
    ranking = rank_root_causes(evidence, {})
    assert names(ranking) == ["payment", "cart", "checkout", "catalog"]  # ties by name, healthy last
    assert [round(p, 9) for _, p in ranking] == [0.6, 0.2, 0.2, 0.0]


def test_calls_only_between_healthy_and_anomalous_services_leave_the_evidence_as_it_is() -> None:
    # frontend and checkout are healthy: no walk can carry blame between payment and cart.
    evidence = {"payment": 3.0, "cart": 1.0}
    assert names(rank_root_causes(evidence, {})) == ["payment", "cart"]
    on_graph = rank_root_causes(evidence, GRAPH)
    assert names(on_graph)[:2] == ["payment", "cart"]
    assert [round(p, 9) for _, p in on_graph[:2]] == [0.75, 0.25]
    # Once checkout (which calls both) is anomalous too, the walk moves blame down to its callees.
    walked = dict(rank_root_causes({**evidence, "checkout": 1.0}, GRAPH))
    assert walked["checkout"] < 0.2 and walked["payment"] > 0.6


def test_evidence_weights_discount_only_kinds_a_caller_inherits_from_its_callees() -> None:
    kinds = ["cpu", "server_latency", "errors", "network_latency", "memory", "call_latency"]
    assert evidence_weights(kinds).tolist() == [1.0] * 6
    assert evidence_weights(kinds, 0.5).tolist() == [1.0, 0.5, 0.5, 1.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="inherited_weight"):
        evidence_weights(kinds, 0.0)
