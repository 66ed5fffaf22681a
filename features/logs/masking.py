"""Generic masks for log message content, applied before template mining.

Each mask is a named compiled regex in :data:`MASKS`; what it matches becomes ``<*>``. They are
generic shapes (addresses, ids, numbers, paths), never rules for one system: the parser is
judged on systems it was not tuned on. Numbers are masked inside a token (``node-17`` ->
``node-<*>``, ``HWID=1973`` -> ``HWID=<*>``) but not when glued to letters (``eth0``, ``tty2``
stay), the Loghub-2.0 convention of variables at sub-token level.

Masks look at which characters are digits, never at which digit (but for the ``0`` of ``0x``),
and see a standalone hex id only as a whole: the miner caches masking by a line's *shape*
(:mod:`features.logs.shapes`, which states the rules a new mask must keep).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WILDCARD = "<*>"

_UNITS = r"(?:[kKMGT]i?[bB]?|[kKMG]?bytes?|ms|us|ns|s|sec|min|h|%)?"
_END = r"(?![\w])"

# In order: the wider shapes first, so a URL's digits are not masked one by one.
MASKS: dict[str, re.Pattern[str]] = {
    # scheme://host:port/path -> scheme://<*> (the scheme says what it is, the rest varies)
    "url": re.compile(r"(?<=[a-zA-Z]://)[^\s\]\)\(,;'\"<>]+"),
    "uuid": re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    "datetime": re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
    # HDFS-style block ids (blk_-123) and any word_digits id: job_1445_0001, container_1_02_000003
    "block_id": re.compile(r"\bblk_-?\d+\b"),
    "underscore_id": re.compile(r"\b[A-Za-z][A-Za-z0-9]*_(?:[A-Za-z0-9]*_)*\d+\w*"),
    # absolute paths (also /10.1.2.3, a host written as a path); not PS/2 nor a lone "/"
    "path": re.compile(r"(?<![\w.\-/~])(?:~|\.{1,2})?(?:/[\w.\-@+%~$#]+)+/?"),
    # host names: fully qualified ones, and dashed names ending in a number (web-prod-03)
    "hostname": re.compile(
        r"\b[A-Za-z][\w-]*(?:\.[\w-]+)+\.(?:com|net|org|edu|gov|io|local|internal|lan|corp)\b"
        r"|\b[A-Za-z]+(?:-[A-Za-z]+)+-\d+\b"
    ),
    "ipv4": re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"),
    "hex": re.compile(
        r"\b0[xX][0-9a-fA-F]+\b|(?<![\w.])(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"
    ),
    # dotted version-like numbers with a tail (2.6.5-1.358smp) as one variable
    "version": re.compile(r"(?<![\w.])\d+(?:\.\d+)+[\w.\-]*" + _END),
    "boolean": re.compile(r"\b(?:true|false|True|False|TRUE|FALSE)\b"),
    # numbers not glued to a letter or a dot before them, with an optional sign, decimals and unit
    "number": re.compile(r"(?<![\w])(?<!\d\.)-?\d+(?:\.\d+)*" + _UNITS + _END),
}

# Variables glued together or split by a dot are one variable (Loghub-2.0's "DV"/"CV" rules).
_JOINED = re.compile(r"<\*>(?:\.?<\*>)+")


def mask(content: str, masks: Sequence[re.Pattern[str]] | None = None) -> str:
    """``content`` with every mask's matches replaced by ``<*>`` and joined variables merged."""
    for pattern in MASKS.values() if masks is None else masks:
        content = pattern.sub(WILDCARD, content)
    return canonical(content)


def canonical(template: str) -> str:
    """A template in canonical form: single spaces, ``<*><*>`` and ``<*>.<*>`` as one ``<*>``."""
    if WILDCARD in template:
        template = _JOINED.sub(WILDCARD, template)
    return " ".join(template.split())


def select_masks(names: Sequence[str] | None) -> tuple[re.Pattern[str], ...]:
    """The masks named, in the table's order; ``None`` means all. Unknown names raise, listing them."""
    if names is None:
        return tuple(MASKS.values())
    unknown = sorted(set(names) - set(MASKS))
    if unknown:
        raise ValueError(f"unknown mask(s) {unknown}; choose from {sorted(MASKS)}")
    return tuple(pattern for name, pattern in MASKS.items() if name in names)
