"""Credentials out of URLs before a URL reaches a message, a log line or a file.

Error messages name the server that failed (``MLflow at http://mlflow:5000 did not answer``), and
URLs in settings may carry a password (``postgresql://user:secret@db/forecasts``) or a token in
the query (``?token=...``). :func:`redact_url` keeps what identifies the server (scheme, user,
host, port, path) and masks the rest.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose values are credentials (matched as substrings of the lower-cased name).
_SECRET_PARAMS = ("password", "passwd", "pwd", "token", "secret", "key", "signature", "sig", "auth", "credential")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_PARAMS)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info (or a bare token as user) and secret-looking
    query values masked; without a ``scheme://``, only user info before an ``@`` is masked."""
    if not isinstance(url, str):
        return url
    if not _SCHEME.match(url):  # host:port or user:password@host typed without a scheme
        return re.sub(r"^[^/?#@\s]*@", f"{MASK}@", url, count=1)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:  # an unparseable netloc (a bad port): mask everything before the host
        return re.sub(r"://[^/@]*@", f"://{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # user:password@ keeps the user; a lone user part may itself be a token (https://TOKEN@host).
        netloc = f"{user}:{MASK}@{hostport}" if has_password else f"{MASK}@{hostport}"
    elif host is None and port is None:
        return url
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_param(name) for name, _ in pairs):
            query = urlencode([(n, MASK if _secret_param(n) else v) for n, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
