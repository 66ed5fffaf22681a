"""Masked tokens of a line, cached by the line's *shape*: what the masks can see of it.

Masking a line takes a dozen regex passes; most lines of a stream repeat a shape seen before with
other values. A line's shape is its UTF-8 bytes with

- every ASCII digit as ``0``: masks test digits only by class (``\\d``, ``[0-9]``), never one digit,
  except the ``0`` of ``0x``, so the shape also keeps where a digit before ``x``/``X`` was ``0``;
- (ASCII lines, the full mask table) every *id* standing alone as one token of its length: a
  uuid (``8-4-4-4-12`` hex digits) or a word of 8 or more hex digits with a digit and a letter
  (``3f2a9c01b7d4``, a request or trace id), after the line's start, a space, tab, ``=``, ``(``,
  ``[``, ``{``, quote, ``/`` or a colon not after a digit, and before the line's end, a space,
  tab, ``)``, ``]``, ``}``, quote, ``,``, ``;``, ``/``, a colon not before ``/`` or a full stop
  ending a word; and every whole token that is an absolute path without ``_``, ``:`` or a uuid,
  as ``<*>``.

Why an id can be folded: the ``uuid`` or ``hex`` mask (or ``url`` / ``path``, which swallow it
whole) always turns it into ``<*>``, and no mask can see which of its characters are letters:
masks test a hex letter only through classes holding all of them (``\\w``, ``[0-9a-fA-F]``,
``[A-Za-z]``, ``\\b``); the letters a mask names (``blk_``, ``false``, ``.com``, ``kB``, ``0x``)
always sit beside a non-hex word character; and the only masks that look at where its digits
are (``datetime``'s seconds, fraction and zone, ``version``'s ``.2``, ``hostname``'s first label,
``url``'s scheme) need a ``.``, ``,``, ``+``, ``-``, a colon after a digit or ``://`` next to it,
which the neighbours above exclude. A path token: no mask before ``path`` can act inside it
(they need ``:``, ``_`` or a uuid), and ``path`` takes it whole. Keep these true when adding a
mask: tests/unit/test_log_shapes.py puts ids in every context a mask treats specially and checks
the cache against the masks.

A shape is cached only when no ASCII digit survives masking (``eth0`` stays ``eth0``, ``eth1``
would not) and, where something was folded, the shape itself masks to the same tokens as the
line (a guard). Other lines are masked each time: still correct, just slower.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from features.logs.masking import MASKS, WILDCARD, mask

ShapeKey = bytes | tuple[bytes, tuple[int, ...]]
WILDCARD_BYTES = WILDCARD.encode()

_DIGITS = bytes.maketrans(b"123456789", b"000000000")
# An id starts the line or follows a space, tab, = ( [ { quote /, or a colon not after a digit
# (the shape gets a leading space, so the character before an id is always there to consume: a
# pattern that starts with a character class lets the regex engine skip ahead quickly); it ends
# the line or precedes a space, tab, ) ] } quote , ; /, a colon not before a slash, or a full stop
# that ends the line or a word.
_IDS = re.compile(
    rb"(?P<pre>[ \t=(\[{\"'/:])(?<!0:)"
    + rb"(?P<id>[0a-fA-F]{8}-[0a-fA-F]{4}-[0a-fA-F]{4}-[0a-fA-F]{4}-[0a-fA-F]{12}"  # uuid
    + rb"|(?=0*[a-fA-F])(?=[a-fA-F]*0)[0a-fA-F]{8,})"  # hex word with a digit and a letter
    + rb"(?=\Z|[ \t)\]}\"',;/]|:(?!/)|\.(?![^ \t]))"
)
# A whole token that is an absolute path without ``_`` or ``:`` (the path mask's characters but
# ``_``, ASCII): the path mask takes it whole. Starts with its ``/`` (a fast literal prefix).
_PATH_CHAR = rb"[0-9A-Za-z.\-@+%~$#]"
_PATHS = re.compile(rb"/(?<![^ \t]/)" + _PATH_CHAR + rb"+(?:/" + _PATH_CHAR + rb"+)*/?(?![^ \t])")
_UUID_IN_PATH = re.compile(rb"[0a-fA-F]{8}-[0a-fA-F]{4}-")
_UUID_TOKEN = b"00000000-0000-0000-0000-000000000000"
_ZERO_X = re.compile("0[xX]")
_ASCII_DIGIT = re.compile(r"[0-9]")


def shape_of(content: str) -> bytes:
    """The line's digits as ``0`` (the first, cheap part of its shape; see :func:`shape_key`)."""
    return content.encode("utf-8", "surrogatepass").translate(_DIGITS)


def shape_key(content: str, digits_zeroed: bytes | None = None, *, fold: bool = True) -> ShapeKey:
    """The full shape of ``content``: digits zeroed, ids and path tokens folded (``fold``, ASCII
    lines; valid for the full :data:`~features.logs.masking.MASKS` only), and where a digit before
    ``x`` was ``0``. Two lines of one shape mask alike but for characters that survive."""
    key = shape_of(content) if digits_zeroed is None else digits_zeroed
    if fold and content.isascii():
        key = _IDS.sub(_fold_id, b" " + key)
        if b"/" in key:
            key = _PATHS.sub(_fold_path, key)
        key = key[1:]
    if b"0x" in key or b"0X" in key:
        return key, tuple(m.start() for m in _ZERO_X.finditer(content))
    return key


def _fold_id(match: re.Match[bytes]) -> bytes:
    """The one token standing for every id of this length (itself an id of the same kind)."""
    pre, word = match.group("pre", "id")
    return pre + (_UUID_TOKEN if len(word) == 36 and word[8:9] == b"-" else b"0" * (len(word) - 1) + b"a")


def _fold_path(match: re.Match[bytes]) -> bytes:
    """``<*>`` for a path token (what the path mask makes of it) unless a uuid in it goes first."""
    path = match.group()
    return path if _UUID_IN_PATH.search(path) else WILDCARD_BYTES


class ShapeCache:
    """Masked tokens by shape, bounded (cleared when full). ``known`` is the dictionary itself, for
    a caller's fast path: ``known.get(shape_of(line))`` is a valid hit (see :meth:`tokens`)."""

    def __init__(self, masks: Sequence[re.Pattern[str]], limit: int) -> None:
        self.masks = masks
        self.limit = limit
        self.fold = tuple(masks) == tuple(MASKS.values())  # the id rule holds for all masks together
        self.known: dict[ShapeKey, tuple[str, ...]] = {}

    def tokens(self, content: str) -> tuple[str, ...]:
        """The masked tokens of ``content`` (``mask(content).split()``), from the cache if it can."""
        zeroed = shape_of(content)
        hit = self.known.get(zeroed)
        return hit if hit is not None else self.miss(content, zeroed)

    def miss(self, content: str, zeroed: bytes) -> tuple[str, ...]:
        """The tokens of a line whose digits-zeroed shape was not cached. (A cached key is always a
        full shape, and a full shape is its own full shape, so a hit on ``zeroed`` is a hit on the
        line's full shape.)"""
        key = shape_key(content, zeroed, fold=self.fold)
        if key != zeroed:
            hit = self.known.get(key)
            if hit is not None:
                return hit
        masked = mask(content, self.masks)
        tokens = tuple(masked.split())
        if self._cacheable(key, zeroed, masked):
            if len(self.known) >= self.limit:
                self.known.clear()
            self.known[key] = tokens
        return tokens

    def _cacheable(self, key: ShapeKey, zeroed: bytes, masked: str) -> bool:
        """Whether every line of this shape masks to ``masked``: no abstracted character survived
        (and, as a guard where ids or paths were folded, the shape itself masks to it)."""
        if b"0" in zeroed and _ASCII_DIGIT.search(masked):
            return False
        shape = key[0] if isinstance(key, tuple) else key
        return shape == zeroed or mask(shape.decode("ascii"), self.masks) == masked
