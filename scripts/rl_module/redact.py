"""Secrets are never written down: credentials in URLs (`user:password@`, `?token=...`) are masked
wherever a configuration or a message leaves the process — config.json, result.json, the registry's
hyperparams, logs (stderr, train.log, OpenTelemetry), --print-config and every experiment store.

The masked value keeps its shape (`http://user:***@host/?token=***`) so that a reader still sees which
server was meant. The process itself keeps the real value: it needs it to connect.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry a credential (OpenTelemetry collectors, presigned URLs, API gateways).
SECRET_PARAMETERS = re.compile(r"token|key|secret|password|passwd|pwd|auth|signature|credential|sig$", re.I)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# A query of a URL quoted without its scheme (a library's error: "url: /v1/traces?token=...").
_QUERY_SECRET = re.compile(r"([?&][^=&\s'\"]*(?:token|key|secret|password|passwd|pwd|auth|signature|credential)"
                           r"[^=&\s'\"]*=)[^&\s'\"<>)]+", re.I)


def url(text: str) -> str:
    """One URL with its password and credential-bearing query parameters masked."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        # A lone user name is a role where passwords live elsewhere (PostgreSQL's PGPASSFILE); elsewhere
        # it may be a token (https://TOKEN@host).
        lone = user if parts.scheme in ("postgresql", "postgres") else MASK
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{lone}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_PARAMETERS.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if SECRET_PARAMETERS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def text(message: str) -> str:
    """Every URL in a free text (a log message, an error) masked, and credential parameters of quoted
    URL paths."""
    return _QUERY_SECRET.sub(lambda found: found.group(1) + MASK, _URL.sub(lambda found: url(found.group(0)), message))


def value(data: Any) -> Any:
    """A configuration value (or a whole JSON-ready structure) with every URL in its strings masked."""
    if isinstance(data, str):
        return text(data) if "://" in data else data
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
        if "://" in message or "=" in message:
            record.msg, record.args = text(message), None
        for key, data in list(vars(record).items()):
            if key.startswith("rl.") and isinstance(data, str):
                setattr(record, key, text(data))
        return True
