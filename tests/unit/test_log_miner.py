"""Masks, the template miner (grouping, generalising, stable ids, state round trip) and the parse metrics."""

from __future__ import annotations

import json

import pytest

from bench.logparse_metrics import score
from features.logs.masking import MASKS, mask, select_masks
from features.logs.miner import MinerSettings, TemplateMatch, TemplateMiner, merge_tokens
from features.logs.shapes import shape_of


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("Served block blk_-6952295868487656571 to /10.250.5.161", "Served block <*> to <*>"),
        ("10.251.73.220:50010 is added", "<*>:<*> is added"),
        ("node node-246 (HWID=1973) on alt0", "node node-<*> (HWID=<*>) on alt0"),
        ("id 123e4567-e89b-12d3-a456-426614174000 at 0x1f3a", "id <*> at <*>"),
        ("app appattempt_1445144423722_0020_000001 done", "app <*> done"),
        ("fetch hdfs://msra-sa-41:9000/tmp ok", "fetch hdfs://<*> ok"),
        ("took 16K and -27 and 3.5ms; enabled=true", "took <*> and <*> and <*>; enabled=<*>"),
        ("Linux version 2.6.5-1.358 started", "Linux version <*> started"),
    ],
)
def test_masks_turn_variables_into_wildcards(line: str, masked: str) -> None:
    assert mask(line) == masked


def test_masks_are_digit_value_agnostic_and_named() -> None:
    line = "pid 4711 at 10.0.0.7:8080 blk_-99 core.6161"
    assert mask(line) == mask(shape_of(line).decode())
    assert set(MASKS) >= {"ipv4", "number", "path", "url", "hex", "uuid", "block_id"}
    with pytest.raises(ValueError, match="choose from"):
        select_masks(["nope"])


def test_miner_groups_generalises_and_keeps_ids() -> None:
    miner = TemplateMiner()
    first = miner.add("session opened for alice from web")
    assert first.is_new and first.template == "session opened for alice from web"
    second = miner.add("session opened for bob from web")
    assert not second.is_new and second.template_id == first.template_id
    assert second.template == "session opened for <*> from web"
    other = miner.add("disk full on /var")
    assert other.is_new and other.template_id != first.template_id
    assert miner.templates() == {
        first.template_id: "session opened for <*> from web",
        other.template_id: "disk full on <*>",
    }
    assert miner.add("session opened for carol from web") == TemplateMatch(
        first.template_id, "session opened for <*> from web", False
    )


def test_merge_keeps_keys_and_brackets() -> None:
    assert merge_tokens("user=root", "user=guest") == "user=<*>"
    assert merge_tokens("()", "(host)") == "(<*>)"
    assert merge_tokens("Jul", "Jun") == "<*>"
    assert merge_tokens("(uid=<*>)", "LOGIN(uid=<*>)") == "<*>"


def test_state_round_trip_gives_identical_later_matches() -> None:
    lines = [f"job {i} finished in {i * 3} ms on host-{i % 4}" for i in range(30)] + [
        "connection from 10.0.0.1 (a.example) closed",
        "connection from 10.0.0.2 () closed",
        "user=root login",
        "user=guest login",
        "cache eth0 up",
        "cache eth1 up",
    ]
    later = [
        "connection from 10.0.0.9 (b) closed",
        "user=admin login",
        "cache eth2 up",
        "job 99 finished in 1 ms on host-3",
        "something entirely new 42",
    ]
    miner = TemplateMiner(MinerSettings(memo_size=8))
    for line in lines:
        miner.add(line)
    restored = TemplateMiner.from_state(json.loads(json.dumps(miner.to_state())))
    assert restored.templates() == miner.templates()
    assert [restored.add(x) for x in later] == [miner.add(x) for x in later]
    assert restored.to_state() == miner.to_state()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        MinerSettings(similarity=0)
    with pytest.raises(ValueError):
        MinerSettings(depth=2)


def test_metrics_perfect_and_imperfect() -> None:
    truth = ["a <*>", "a <*>", "b", "c <*>"]
    perfect = score(truth, ["a  <*>", "a <*>", "b", "c <*>"])
    assert (perfect.ga, perfect.pa, perfect.fga) == (1.0, 1.0, 1.0)
    # lines 1-2 grouped right with a wrong template; lines 3-4 merged into one group
    worse = score(truth, ["a x", "a x", "b", "b"])
    assert worse.ga == pytest.approx(0.5)
    assert worse.pa == pytest.approx(0.25)
    # exact groups 1 of 2 predicted, 1 of 3 true: F1 = 2 * .5 * (1/3) / (.5 + 1/3)
    assert worse.fga == pytest.approx(0.4)
    with pytest.raises(ValueError):
        score(["a"], [])
