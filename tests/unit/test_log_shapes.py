"""The shape cache of masked tokens: always what the masks give, and folding ids so a stream of
random hex ids, uuids and paths masks each shape once."""

from __future__ import annotations

import random

import pytest

from features.logs import shapes
from features.logs.masking import mask, select_masks
from features.logs.shapes import ShapeCache, shape_key

HEX = "0123456789abcdefABCDEF"


def _hex_word(rng: random.Random) -> str:
    """A hex word of 4-20 characters whose letters and digits fall anywhere (or at one end only)."""
    n = rng.choice((7, 8, 12))
    style = rng.random()
    if style < 0.2:  # digits first, one letter at the end
        return "".join(rng.choice("0123456789") for _ in range(n - 1)) + rng.choice("abcdefABCDEF")
    if style < 0.4:  # letters first, one digit at the end
        return "".join(rng.choice("abcdefABCDEF") for _ in range(n - 1)) + rng.choice("0123456789")
    return "".join(rng.choice(HEX) for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return "-".join("".join(rng.choice(HEX) for _ in range(k)) for k in (8, 4, 4, 4, 12))


def _value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.7:
        return _hex_word(rng)
    if kind < 0.9:
        return _uuid(rng)
    return str(rng.randrange(10 ** rng.randrange(1, 9)))


# Every context a mask treats specially, one per line so that most lines are cached and reused:
# the characters the id rule allows and refuses around an id, and the literals of every mask
# (dates, versions, host names, URLs, units, block ids, paths, booleans), non-ASCII neighbours.
CONTEXTS = [
    *("session {v} refreshed", "{v}", "id={v}", "user=({v})", "[{v}]", "{{{v}}}", "'{v}'", '"{v}";'),
    *("key:{v}", "key:{v}: x", "{v}:/x", "{v}://x", "{v}:// x", "x://{v}", "ftp://h/{v}.{v}"),
    *("at 10:{v}", "2024-01-01T10:00:{v}", "2024-01-01T10:00:00.{v}", "2024-01-01 10:00:00,{v}"),
    *("2024-01-01T10:00:00+{v}", "2024-01-01T10:00:00+01:{v}", "2024-01-01T10:00:00-{v}"),
    *("version 1.{v}", "1.2.{v}", "1.2-{v}", "v{v}.{v}", "x.{v}", ".{v}", "-{v}", "+{v}", "#{v}"),
    *("{v}.example.com", "a.{v}.corp", "{v}-web-01", "{v}-a.example.com", "web-{v}", "{v}.x"),
    *("{v}-x", "{v}. end"),
    *("{v}kB", "{v}bytes", "{v}ms", "12{v}", "{v}%", "1.{v}kB", "0x{v}", "1x{v}", "0X{v}"),
    *("blk_{v}", "blk_-{v}", "job_{v}_{v}", "x_{v}", "{v}_x", "@{v}", "~/{v}", "./{v}", "../{v}"),
    *("/a/{v}/b", "/static/app.{v}.js", "/a/b_c/{v}", "//{v}", "/x/{v}:{v}", "/a/{v}-{v}/c"),
    *("/logs/job_{v}.log", "/a/b:{v}/c", "/a/{v}//b"),
    *("ip 10.0.{v}.1", "/10.{v}.0.1", "{v}.{v}.{v}.{v}", "true {v}", "{v}true", "{v}.false"),
    *("tab\t{v}\tx", "\u00e9{v}", "\u00e9 {v} caf\u00e9", "{v}\u00e9", "x\n{v}", "{v} {v}"),
]


@pytest.mark.parametrize("masks", [None, ("number",), ("hex", "path", "number")])
def test_cached_tokens_are_always_what_the_masks_give(masks: tuple[str, ...] | None) -> None:
    rng = random.Random(7)
    selected = select_masks(masks)
    cache = ShapeCache(selected, limit=100_000)
    checked = 0
    for template in CONTEXTS:
        for _ in range(200):  # many values per shape, so cached shapes are reused across them
            line = template.format(v=_value(rng))
            assert cache.tokens(line) == tuple(mask(line, selected).split()), line
            checked += 1
    assert checked == 200 * len(CONTEXTS)


# Lines without digits whose variable parts a too-wide folding rule would confuse.
DIGITLESS = [
    *("x/a/b", "x/cc/dd", "open /etc/passwd", "open /etc/shadow", "open //etc", "open //var"),
    *("at a:/b/c", "at a:/d", "get /a_b/c", "get /a_c/d", "(/x/y)", "(/z)", "~/x/y", "~/z"),
    *("id deadbeefcafe", "id feedfacebeef", "/a/b:c", "/a/d:e", "/api/v/x-y", "/api/v/z"),
]


@pytest.mark.parametrize("masks", [None, ("path",)])
def test_digitless_lines_are_never_confused(masks: tuple[str, ...] | None) -> None:
    selected = select_masks(masks)
    cache = ShapeCache(selected, limit=100)
    for line in DIGITLESS * 2:
        assert cache.tokens(line) == tuple(mask(line, selected).split()), line


def test_ids_and_paths_fold_so_random_values_mask_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    cache = ShapeCache(select_masks(None), limit=100_000)
    templates = [
        "session {h} refreshed for user {n}",
        "request {u} routed to backend 10.0.0.{n}:{n}",
        "GET /static/js/app.{h}.js 304 in {n} ms",
        "trace_id={h} span=({h}) done: {h}",
        "GET /api/orders/{u}/items 200",
    ]

    def line() -> str:
        template = rng.choice(templates)
        return template.format(h=rng.randbytes(8).hex(), u=_uuid(rng), n=rng.randrange(1000, 9999))

    for _ in range(200):
        cache.tokens(line())
    calls = []
    real_mask = shapes.mask
    monkeypatch.setattr(shapes, "mask", lambda *a: calls.append(a) or real_mask(*a))
    for _ in range(2000):
        cache.tokens(line())
    assert calls == []  # every later line hit a cached shape
    assert len(cache.known) <= 2 * len(templates)


def test_shape_keeps_what_masks_tell_apart() -> None:
    # the 0 of 0x: "0x1f2a" is a hex value, "1x1f2a" is not
    cache = ShapeCache(select_masks(None), limit=100)
    assert cache.tokens("at 0x1f2a") == ("at", "<*>")
    assert cache.tokens("at 1x1f2a") == ("at", "1x1f2a")
    # an id glued to a full stop and a TLD is a host name's label, not a standalone id
    assert shape_key("id 3f2a9c01b7d4 ok") == shape_key("id a0000000000b ok")
    assert shape_key("at 3f2a9c01b7d4.example.com") != shape_key("at a0000000000b.example.com")
    # short hex words and words with other letters are left as they are
    assert shape_key("ab12cd") == b"ab00cd"
    assert shape_key("deadbeefs0") == b"deadbeefs0"


def test_lines_whose_digits_survive_are_not_cached() -> None:
    cache = ShapeCache(select_masks(None), limit=100)
    assert cache.tokens("link eth0 up") == ("link", "eth0", "up")
    assert cache.tokens("link eth1 up") == ("link", "eth1", "up")
    assert cache.known == {}
