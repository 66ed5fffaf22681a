"""What a series id (``unique_id``) may be: the longest the sinks can key on, the characters they carry.

The forecast store keys every table on ``unique_id`` (``text`` columns, so length alone costs
nothing), but PostgreSQL's btree index, which backs each primary key, holds entries of at most
2704 bytes (a third of an 8 kB page): a longer id cannot be inserted, and one such id in a bulk
write fails the write for every series. PostgreSQL ``text`` cannot hold NUL at all, and control
characters (newlines, escapes) break Grafana variables, PagerDuty summaries and log lines. The
data contract quarantines such series' rows (:mod:`foresight.contracts`); the store skips their
catalogue entries, so one bad id never stops the others.
"""

from __future__ import annotations

import re

# UTF-8 bytes, not characters: the index limit is in bytes, and a character takes up to 4.
# 1024 leaves room under PostgreSQL's 2704-byte btree entry for the composite keys
# (``unique_id, ds``) and is several times longer than real ids (a Prometheus series with many
# extra labels runs to a few hundred bytes). Prometheus label values and Grafana have no hard
# limit, and the PagerDuty dedup key is hashed when an id makes it too long.
MAX_UNIQUE_ID_BYTES = 1024

# C0 controls (NUL, tab, newline, escape...), DEL and the C1 controls.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")

ID_NOT_UTF8 = "unique_id: not valid UTF-8"
ID_TOO_LONG = (
    f"unique_id: longer than {MAX_UNIQUE_ID_BYTES} UTF-8 bytes, the most the forecast store can key on"
)
ID_CONTROL_CHARACTERS = (
    "unique_id: contains control characters (NUL, newline, ...), which the sinks cannot carry"
)


def utf8_length(unique_id: str) -> int:
    """The id's length in UTF-8 bytes (unencodable characters, e.g. lone surrogates, count 3)."""
    return len(unique_id.encode("utf-8", "surrogatepass"))


def has_control_characters(unique_id: str) -> bool:
    return CONTROL_CHARACTERS.search(unique_id) is not None


def unique_id_problem(unique_id: str) -> str | None:
    """Why the sinks cannot hold ``unique_id`` (one of the reasons above), or None when they can."""
    try:
        encoded = unique_id.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: text decoded with surrogateescape upstream
        return ID_NOT_UTF8
    if len(encoded) > MAX_UNIQUE_ID_BYTES:
        return ID_TOO_LONG
    if has_control_characters(unique_id):
        return ID_CONTROL_CHARACTERS
    return None
