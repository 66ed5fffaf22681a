"""Mask credentials inside text before it reaches a console or a log.

Error messages quote URLs (``postgresql://app:s3cret@db/foresight``, a Pushgateway with
``user:password@``, a webhook with ``?token=...``). :func:`redact_url` masks the credential parts
of every URL in a piece of text and leaves the rest readable, so an error still says which server
failed.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host  or  scheme://token@host (a bare user part is often a token too)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s?#'\"]+)@")
# ?token=...&api_key=... and friends, in a URL's query or a similar key=value string
_SECRET_PARAM = re.compile(
    r"(?P<key>\b(?:[a-z0-9_\-]*(?:token|secret|password|passwd|pwd|api[_\-]?key|apikey|access[_\-]?key|"
    r"signature|credential|authorization|routing[_\-]?key)[a-z0-9_\-]*))=(?P<value>[^&\s'\"#]+)",
    re.IGNORECASE,
)


def redact_url(text: str) -> str:
    """``text`` with ``user:password@`` in URLs and token-like ``key=value`` parameters masked."""

    def userinfo(match: re.Match[str]) -> str:
        user, sep, _ = match["userinfo"].partition(":")
        return f"{match['scheme']}{user}:{MASK}@" if sep else f"{match['scheme']}{MASK}@"

    text = _USERINFO.sub(userinfo, text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}={MASK}", text)
