"""An online template miner of the Drain family, with a memo that lets repeated shapes skip the search.

A line is masked (:mod:`features.logs.masking`), split on white space and routed down a tree by
its token count and its first ``depth - 2`` tokens (a token holding a digit or ``<*>`` goes down
the ``<*>`` branch; a node with ``max_children`` children sends new tokens there too). In the leaf
it joins the cluster whose template shares the most tokens with it when that share reaches
``similarity``, turning the positions that differ into ``<*>``; otherwise it starts a cluster.

Speed: most lines repeat a shape seen before. Two dictionaries short-cut them: the line's shape
(digits as ``0``, hex ids' letters folded; :mod:`features.logs.shapes`) -> its masked tokens, a
pure function of the line so a cache only; and the masked tokens -> the cluster they joined, part
of the state (a checkpoint restores it, so a restored miner matches later lines exactly as the one
it came from would have). Both are bounded: the shape cache is cleared when full, the memo forgets
its oldest half. A line whose shape and tokens are both known costs two dictionary look-ups.

Template ids are stable: ``T`` plus a hash of the cluster's first template, kept when the
template generalises, the same for the same first line in any process.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from features.logs.masking import WILDCARD, canonical, select_masks
from features.logs.shapes import ShapeCache, shape_of

STATE_VERSION = 1


@dataclass(frozen=True)
class MinerSettings:
    """depth: tree depth (Drain's: token-count level + ``depth - 2`` token levels); similarity:
    share of a template's tokens a line must share to join it; max_children: per tree node;
    memo_size: masked shapes remembered; masks: mask names (``None``: all); count_wildcards: a
    template's ``<*>`` positions count as shared (Drain3's ``include_params``)."""

    depth: int = 4
    similarity: float = 0.8  # chosen leave-one-system-out on loghub-dev (docs/logs.md)
    max_children: int = 100
    memo_size: int = 100_000
    masks: tuple[str, ...] | None = None
    count_wildcards: bool = False

    def __post_init__(self) -> None:
        if self.depth < 3:
            raise ValueError(f"depth must be at least 3, got {self.depth}")
        if not 0.0 < self.similarity <= 1.0:
            raise ValueError(f"similarity must be in (0, 1], got {self.similarity}")
        if self.max_children < 2 or self.memo_size < 1:
            raise ValueError("max_children must be at least 2 and memo_size at least 1")
        select_masks(self.masks)  # unknown names raise here, listing the valid ones


@dataclass(frozen=True)
class TemplateMatch:
    """Where one line went: its cluster's id, the cluster's template now, and whether it is new."""

    template_id: str
    template: str
    is_new: bool


@dataclass
class _Cluster:
    template_id: str
    tokens: list[str]
    path: tuple[str, ...]  # the tree route it was filed under (token count first)
    size: int = 0
    text: str = field(default="", repr=False)
    # per position: None for a plain token, else the (prefix, suffix) around its one ``<*>``
    patterns: list[tuple[str, str] | None] = field(default_factory=list, repr=False)
    match: TemplateMatch = field(init=False, repr=False)  # what a known line returns; set by refresh()

    def refresh(self) -> None:
        self.text = canonical(" ".join(self.tokens))
        self.patterns = [_pattern(t) for t in self.tokens]
        self.match = TemplateMatch(self.template_id, self.text, False)


_PREFIX_ENDS = frozenset("=:([{")  # a value follows these
_SUFFIX_STARTS = frozenset(")]}:,;")  # and ends before these


def _pattern(token: str) -> tuple[str, str] | None:
    if token.count(WILDCARD) != 1:
        return None
    prefix, suffix = token.split(WILDCARD)
    return prefix, suffix


def _fits(pattern: tuple[str, str] | None, token: str) -> bool:
    if pattern is None:
        return False
    prefix, suffix = pattern
    return len(token) >= len(prefix) + len(suffix) and token.startswith(prefix) and token.endswith(suffix)


def merge_tokens(template_token: str, token: str) -> str:
    """The token standing for both: ``<*>``, keeping a shared ``key=`` / ``(`` prefix and ``)`` / ``:``
    suffix (``user=root`` and ``user=guest`` -> ``user=<*>``; ``(a)`` and ``()`` -> ``(<*>)``)."""
    n = 0
    limit = min(len(template_token), len(token))
    while n < limit and template_token[n] == token[n]:
        n += 1
    cut = next((i + 1 for i in range(n - 1, -1, -1) if template_token[i] in _PREFIX_ENDS), 0)
    if template_token[:cut].endswith("<") or WILDCARD in template_token[:cut]:
        cut = 0  # never split a "<*>"
    rest_t, rest_x = template_token[cut:], token[cut:]
    m = 0
    limit = min(len(rest_t), len(rest_x))
    while m < limit and rest_t[-1 - m] == rest_x[-1 - m]:
        m += 1
    start = next((j for j in range(len(rest_t) - m, len(rest_t)) if rest_t[j] in _SUFFIX_STARTS), len(rest_t))
    middle = rest_t[:start].replace(WILDCARD, "")
    if WILDCARD in rest_t[start:] or any(c in "([{" for c in middle):
        start = len(rest_t)  # a kept suffix may not hold a variable nor close a bracket opened inside
    return canonical(template_token[:cut] + WILDCARD + rest_t[start:])


class TemplateMiner:
    """Online Drain-family miner: ``add(content)`` files a line and returns its :class:`TemplateMatch`."""

    def __init__(self, settings: MinerSettings | None = None) -> None:
        self.settings = settings or MinerSettings()
        self._masks = select_masks(self.settings.masks)
        self._clusters: dict[str, _Cluster] = {}
        self._root: dict[str, Any] = {}
        self._memo: dict[tuple[str, ...], str] = {}
        self._shapes = ShapeCache(self._masks, limit=max(1024, self.settings.memo_size))

    # -- public surface --------------------------------------------------------------------------
    def add(self, content: str) -> TemplateMatch:
        """File one line's content (header already removed) and return where it went."""
        shape = shape_of(content)  # the shape cache's fast path, inlined: this runs for every line
        tokens = self._shapes.known.get(shape)
        if tokens is None:
            tokens = self._shapes.miss(content, shape)
        cluster_id = self._memo.get(tokens)
        if cluster_id is not None:
            cluster = self._clusters[cluster_id]
            cluster.size += 1
            return cluster.match
        match = self._add_tokens(tokens)
        self._remember(tokens, match.template_id)
        return match

    def templates(self) -> dict[str, str]:
        """Every cluster's id -> its current template, in creation order."""
        return {cid: c.text for cid, c in self._clusters.items()}

    def sizes(self) -> dict[str, int]:
        """Every cluster's id -> lines it has taken."""
        return {cid: c.size for cid, c in self._clusters.items()}

    def to_state(self) -> dict[str, Any]:
        """Everything a restored miner needs to carry on exactly as this one would (JSON-safe)."""
        return {
            "version": STATE_VERSION,
            "settings": {
                **asdict(self.settings),
                "masks": None if self.settings.masks is None else list(self.settings.masks),
            },
            "clusters": [[c.template_id, c.tokens, list(c.path), c.size] for c in self._clusters.values()],
            "memo": [[list(tokens), cid] for tokens, cid in self._memo.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TemplateMiner:
        """A miner restored from :meth:`to_state`'s output."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"miner state version {state.get('version')!r}, expected {STATE_VERSION}")
        raw = dict(state["settings"])
        if raw.get("masks") is not None:
            raw["masks"] = tuple(raw["masks"])
        miner = cls(MinerSettings(**raw))
        for template_id, tokens, path, size in state["clusters"]:
            cluster = _Cluster(template_id, list(tokens), tuple(path), int(size))
            cluster.refresh()
            miner._clusters[template_id] = cluster
            miner._leaf(cluster.path, create=True).append(template_id)
        miner._memo = {tuple(tokens): cid for tokens, cid in state["memo"]}
        return miner

    # -- internals -------------------------------------------------------------------------------
    def _remember(self, tokens: tuple[str, ...], cluster_id: str) -> None:
        memo = self._memo
        if len(memo) >= self.settings.memo_size:  # forget the oldest half (dicts keep insertion order)
            for key in list(memo)[: len(memo) // 2]:
                del memo[key]
        memo[tokens] = cluster_id

    def _route(self, tokens: tuple[str, ...]) -> list[str]:
        return [
            WILDCARD if (WILDCARD in t or any(c.isdigit() for c in t)) else t
            for t in tokens[: self.settings.depth - 2]
        ]

    def _leaf(self, path: tuple[str, ...], create: bool) -> list[str]:
        node = self._root.setdefault(path[0], {}) if create else self._root.get(path[0], {})
        for key in path[1:]:
            if key not in node:
                if not create:
                    return []
                node[key] = {}
            node = node[key]
        return node.setdefault("", []) if create else node.get("", [])

    def _path_for_new(self, tokens: tuple[str, ...]) -> tuple[str, ...]:
        """The route a new cluster is filed under: full nodes send new tokens to ``<*>``."""
        path = [str(len(tokens))]
        node = self._root.setdefault(path[0], {})
        for key in self._route(tokens):
            if key not in node and key != WILDCARD:
                if sum(1 for k in node if k not in ("", WILDCARD)) >= self.settings.max_children - 1:
                    key = WILDCARD
            node = node.setdefault(key, {})
            path.append(key)
        return tuple(path)

    def _candidates(self, tokens: tuple[str, ...]) -> list[str]:
        node = self._root.get(str(len(tokens)))
        if node is None:
            return []
        for key in self._route(tokens):
            nxt = node.get(key)
            if nxt is None:
                nxt = node.get(WILDCARD)
            if nxt is None:
                return []
            node = nxt
        return node.get("", [])

    def _add_tokens(self, tokens: tuple[str, ...]) -> TemplateMatch:
        best, best_key = None, (-1.0, -1)
        for cid in self._candidates(tokens):
            cluster = self._clusters[cid]
            same = params = 0
            for t, p, x in zip(cluster.tokens, cluster.patterns, tokens, strict=True):
                if t == x:  # a masked variable where the template has one counts as shared
                    same += 1
                elif t == WILDCARD:
                    params += 1
                elif _fits(p, x):
                    same += 1
            if self.settings.count_wildcards:
                same += params
            key = (same / len(tokens) if tokens else 1.0, params)
            if key > best_key:
                best, best_key = cluster, key
        if best is not None and best_key[0] >= self.settings.similarity:
            best.size += 1
            changed = False
            for i, (t, p, x) in enumerate(zip(best.tokens, best.patterns, tokens, strict=True)):
                if t != x and t != WILDCARD and not _fits(p, x):
                    best.tokens[i] = merge_tokens(t, x)
                    changed = True
            if changed:
                best.refresh()
            return best.match
        path = self._path_for_new(tokens)
        cluster = _Cluster(self._new_id(tokens), list(tokens), path, 1)
        cluster.refresh()
        self._clusters[cluster.template_id] = cluster
        self._leaf(path, create=True).append(cluster.template_id)
        return TemplateMatch(cluster.template_id, cluster.text, True)

    def _new_id(self, tokens: tuple[str, ...]) -> str:
        base = "T" + hashlib.blake2b(" ".join(tokens).encode(), digest_size=6).hexdigest()
        template_id, n = base, 1
        while template_id in self._clusters:
            n += 1
            template_id = f"{base}-{n}"
        return template_id
