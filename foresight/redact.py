"""Credentials out of everything people see: masked URLs, masked secret-looking keys.

One place decides what a secret looks like, so ``Settings.redacted()``, model reprs, error
messages and logs agree. A value is masked when its key names a credential (``password``,
``token``, ``secret``, ``api_key``, ``routing_key``, ...), when it is a ``SecretStr``, or, for a
URL, in its password (``postgresql://user:***@host/db``) and credential-looking query
parameters. Masking is one-way: nothing here can reveal a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretBytes, SecretStr

MASK = "**********"  # what pydantic shows for a SecretStr, so every masked value looks the same

# Key names (lower case, any separator) that hold credentials. Substrings, so ``sasl_password``,
# ``aws_secret_access_key``, ``grafana_token`` and ``X-Api-Key`` all match.
_SECRET_KEY = re.compile(
    r"password|passwd|passphrase|^pass$|^pwd$|secret|token|credential|authori[sz]ation|cookie"
    r"|api[-_]?key|access[-_]?key|private[-_]?key|routing[-_]?key|integration[-_]?key|signing[-_]?key"
    r"|session[-_]?key|^key$|signature|^sig$|^auth$"
)
# scheme://user:password@host...: the password is everything from the userinfo's first ':' to
# the last '@' (SQLAlchemy accepts '/' and '@' unencoded in a password, so this masks too much
# rather than too little on odd URLs).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@:\s]*):(?P<password>[^\s]*)@")
# key=value pairs in free text (a log line, a DSN's options) whose key names a credential.
_SECRET_PARAM = re.compile(
    r"(?P<key>\b[a-z0-9_\-]*(?:token|secret|password|passwd|pwd|api[_\-]?key|apikey|access[_\-]?key"
    r"|signature|credential|authorization|routing[_\-]?key)[a-z0-9_\-]*)=(?P<value>[^&\s'\"#]+)",
    re.IGNORECASE,
)
# scheme://token@host: a user part alone is often a token (https://TOKEN@github.com).
_URL_LONE_USER = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@:\s]+@")


def is_secret_key(name: object) -> bool:
    """True when a key's name says its value is a credential (``bearer_token``, ``sasl_password``)."""
    return isinstance(name, str) and bool(_SECRET_KEY.search(name.lower()))


def redact_url(text: str) -> str:
    """``text`` with every URL's password and credential-looking query values masked.

    ``postgresql://app:pw@db/forecasts`` -> ``postgresql://app:***@db/forecasts``;
    ``https://TOKEN@h/x`` -> ``https://***@h/x``; ``https://h/x?token=abc`` ->
    ``https://h/x?token=***``; ``user:pw@host:9091`` (no scheme) -> ``***@host:9091``; and
    ``password=x`` anywhere in the text -> ``password=***``. The scheme, host, port and path stay,
    so a message still says which server it is about. Text without credentials is unchanged.
    """
    if "://" not in text and "@" in text and not any(c.isspace() for c in text):
        # One address typed without a scheme (user:password@host:9091): mask its user info.
        return re.sub(r"^[^/?#@]*@", "***@", text, count=1)
    masked = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", text)
    masked = _URL_LONE_USER.sub(lambda m: f"{m.group('head')}***@", masked)
    if "?" in masked and "://" in masked:
        masked = re.sub(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+", lambda m: _mask_query(m.group(0)), masked)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}=***", masked)


def _mask_query(url: str) -> str:
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return url
    if not any(is_secret_key(k) for k, _ in pairs):
        return url
    query = urlencode([(k, "***" if is_secret_key(k) else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(query=query))


def redact(value: Any, key: object = None) -> Any:
    """A copy of ``value`` (JSON-like: mappings, lists, scalars) safe to print or log.

    Values under a secret-looking ``key`` become :data:`MASK` (``None`` stays ``None``, so an
    unset credential still reads as unset); ``SecretStr`` becomes :data:`MASK`; strings have
    their URL credentials masked; mappings and lists are redacted item by item.
    """
    if isinstance(value, (SecretStr, SecretBytes)):
        return MASK
    if key is not None and is_secret_key(key) and value is not None:
        return MASK
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Mapping):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
