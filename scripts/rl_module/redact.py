"""Secrets are never written down: credentials in URLs (`user:password@`, `?token=...`) are masked
wherever a configuration or a message leaves the process — config.json, result.json, the registry's
hyperparams, logs (stderr, train.log, OpenTelemetry), --print-config and every experiment store.

The masked value keeps its shape (`http://user:***@host/?token=***`) so that a reader still sees which
server was meant. The process itself keeps the real value: it needs it to connect.
"""

from __future__ import annotations

import difflib
import logging
import re
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
DATABASE_SCHEMES = ("postgresql", "postgres", "mysql")
# Query parameters that carry a credential (OpenTelemetry collectors, presigned URLs, API gateways).
SECRET_PARAMETERS = re.compile(r"token|key|secret|password|passwd|pwd|auth|signature|credential|sig$", re.I)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_WHOLE_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S.*", re.S)
# A query of a URL quoted without its scheme (a library's error: "url: /v1/traces?token=...").
_QUERY_SECRET = re.compile(r"([?&][^=&\s'\"]*(?:token|key|secret|password|passwd|pwd|auth|signature|credential)"
                           r"[^=&\s'\"]*=)[^&\s'\"<>)]+", re.I)
# `user:password@host` without a scheme (an OTLP gRPC endpoint), in a free text; `scheme://` is not a user.
_USERINFO = re.compile(r"(?<![\w.~%+/-])([\w.~%+-]+):(?!//)[^\s'\"<>]+@(?=[\w\[])")
# `scheme://user:` and a password that is no port: masked up to the token's last "@", or, when a space in
# the password ended the token, up to the next "@" on the line (libpq and others quote a URL as given).
_PASSWORD_IN_TOKEN = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@\[\]'\"<>]+):(?!\d+(?:[/?#\s'\"]|$))"
                                r"[^\s'\"<>]*@")
_PASSWORD_PAST_SPACE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@\[\]'\"<>]+):(?!\d+(?:[/?#\s'\"]|$))"
                                  r"(?=[^\s@'\"<>]*\s)[^@\n]*@")
# A whole value written as an authority: `user:password@host...`, or `token@host:port` (a gRPC endpoint's
# token; a lone name before a host without a port is more often an address, left as it is).
_AUTHORITY = re.compile(r"[^\s/@:]+:[^\s]*@[^\s@]+|[^\s/@:]+@[\w.\[\]:-]+:\d+(/\S*)?")


def url(text: str) -> str:
    """One URL with its password and credential-bearing query parameters masked. A URL that no parser reads
    as its writer meant (a raw space, "/", "?", "@" or "%" in the password) is masked from `scheme://user:`
    to its last "@"; one without a scheme (`user:password@host:4317`, as gRPC endpoints are written) too.
    A URL with nothing to mask is returned as it was written."""
    if "://" not in text:
        return url(f"x://{text}")[4:] if _AUTHORITY.fullmatch(text) else text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number is a password cut short by a "/", "?" or "#"
    except ValueError:
        return _mask_after_user(text) or text
    if "@" not in parts.netloc and _userinfo_beyond_netloc(parts):
        return _mask_after_user(text) or text
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        # A lone user name is a database's role, whose password lives elsewhere (PostgreSQL's PGPASSFILE),
        # also behind SQLAlchemy's driver suffix (postgresql+psycopg://, an Optuna storage); elsewhere it
        # may be a token (https://TOKEN@host).
        lone = user if _database_scheme(parts.scheme) else MASK
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{lone}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_PARAMETERS.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if SECRET_PARAMETERS.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return text
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _database_scheme(scheme: str) -> bool:
    """Whether a URL's scheme names a database, or is a misspelling of one (`postgresq://`): a refusal of the
    misspelt URL echoes it back, and its role must read as written there too. The cutoff is stricter than
    a did-you-mean's, since a scheme taken for a database's shows a token before its "@" (https://TOKEN@)."""
    base = scheme.lower().split("+", 1)[0]
    return base in DATABASE_SCHEMES or bool(difflib.get_close_matches(base, DATABASE_SCHEMES, n=1, cutoff=0.8))


def password(text: str) -> str:
    """The password of a URL as its writer meant it, however badly written (see url()); "" when none."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        return parts.netloc.rsplit("@", 1)[0].partition(":")[2]
    if parts is None or _userinfo_beyond_netloc(parts):
        user, colon, after = text.partition("://")[2].partition(":")
        if colon and "@" in after and not any(c in user for c in "/?#@[ "):
            return after.rsplit("@", 1)[0]
    return ""


def _userinfo_beyond_netloc(parts: SplitResult) -> bool:
    """Whether an "@" past the host part ends a password that a "/", "?" or "#" cut short: one in the path,
    or in the query or fragment where no "=" comes before it (`?email=a@b` is a query's value)."""
    if "@" in parts.path:
        return True
    return any("@" in part and "=" not in part.split("@", 1)[0] for part in (parts.query, parts.fragment))


def _mask_after_user(text: str) -> str | None:
    """`scheme://user:***@host...`: whatever follows `scheme://user:` up to the last "@" masked; None when
    the text has no `user:` followed by an "@"."""
    scheme, _, rest = text.partition("://")
    user, colon, after = rest.partition(":")
    if not colon or "@" not in after or any(c in user for c in "/?#@[ "):
        return None
    return f"{scheme}://{user}:{MASK}@{after.rsplit('@', 1)[1]}"


def text(message: str) -> str:
    """Every URL in a free text (a log message, an error) masked, `user:password@` without a scheme too, and
    credential parameters of quoted URL paths."""
    masked = _PASSWORD_IN_TOKEN.sub(lambda found: f"{found.group(1)}:{MASK}@", message)
    masked = _PASSWORD_PAST_SPACE.sub(lambda found: f"{found.group(1)}:{MASK}@", masked)
    masked = _URL.sub(lambda found: url(found.group(0)), masked)
    masked = _USERINFO.sub(lambda found: f"{found.group(1)}:{MASK}@", masked)
    return _QUERY_SECRET.sub(lambda found: found.group(1) + MASK, masked)


def value(data: Any) -> Any:
    """A configuration value (or a whole JSON-ready structure) with every URL in its strings masked."""
    if isinstance(data, str):
        if (_WHOLE_URL.fullmatch(data) and data.count("://") == 1) or _AUTHORITY.fullmatch(data):
            return url(data)  # one value, read whole: a space in its password does not end it
        return text(data) if "://" in data or "@" in data else data
    if isinstance(data, dict):
        return {k: value(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(value(v) for v in data)
    return data


def masked(data: Any) -> bool:
    """Whether a value written down was masked (a resumed run then takes the real one from now)."""
    return isinstance(data, str) and MASK in data


class Filter(logging.Filter):
    """Masks URLs in every record's message, and in its event attributes (rl.*, which the OpenTelemetry
    bridge exports), before any handler (stderr, file, OpenTelemetry) sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message or "=" in message or "@" in message:
            record.msg, record.args = text(message), None
        for key, data in list(vars(record).items()):
            if key.startswith("rl.") and isinstance(data, str):
                setattr(record, key, text(data))
        return True
