"""Replace secret-looking values before any text enters a prompt.

Secret *files* are excluded by the indexer; this catches secrets planted in ordinary source files:
private key blocks, cloud and service access keys, bearer tokens, passwords in assignments and
credentials inside connection strings. The replacement keeps the surrounding code (the variable name,
quotes, the URL's scheme and host) so the model still sees the shape of the code.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict

REDACTED = "<redacted>"

_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.S
)
_TOKEN_PATTERNS = [
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),  # GitLab
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b"),  # OpenAI / Anthropic style
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),  # Google API key
    re.compile(r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}\b"),  # Stripe
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),  # Hugging Face
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b"),  # JWT
]
# Key=value pairs inside connection strings (Azure storage, ADO.NET, ODBC): AccountKey=…; Password=…;
_CONN_STRING_PAIR = re.compile(
    r"(?P<head>\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)=)(?P<secret>[^;\s'\"`]{4,})",
    re.I,
)
# HTTP authorization headers written out in code or configuration.
_AUTH_HEADER = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<secret>[A-Za-z0-9_\-.=+/]{20,})")
# scheme://user:password@host  → keep user and host, drop the password.
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/@'\"`]+:)(?P<secret>[^\s@'\"`/]+)(?P<at>@)")
_SECRET_NAME = (
    r"[A-Za-z0-9_.\-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|"
    r"private[_\-]?key|client[_\-]?secret|auth[_\-]?key|credentials?)[A-Za-z0-9_.\-]*"
)
# name = "value" / name: 'value' / "name": "value" / NAME=value (env style)
_ASSIGNMENT_QUOTED = re.compile(
    rf"(?P<head>(?P<name>[\"']?{_SECRET_NAME}[\"']?)\s*(?::=|=>|==?|:)\s*(?P<q>[\"'`]))(?P<secret>[^\"'`\n]{{4,}})(?P=q)",
    re.I,
)
_ASSIGNMENT_BARE = re.compile(rf"(?P<head>^\s*(?:export\s+)?{_SECRET_NAME}\s*=\s*)(?P<secret>[^\s\"'`#;]{{6,}})\s*$", re.I | re.M)
_NOT_SECRET_VALUES = re.compile(r"^(?:\{.*\}|\$\{?\w+\}?|<[^>]*>|%\(?\w+\)?s|None|null|true|false|changeme|\*+|x+)$", re.I)


def _looks_like_value(value: str) -> bool:
    """Skip placeholders and code (``os.environ[...]``, ``${VAR}``) so only literal values are replaced."""
    if _NOT_SECRET_VALUES.match(value):
        return False
    return not re.search(r"[(){}\[\]]|\s", value)


def redact(text: str) -> str:
    """``text`` with secret-looking values replaced by ``<redacted>``."""
    if not text:
        return text
    text = _PRIVATE_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}-----\n{REDACTED}\n-----END {m.group(1)}-----", text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED + m.group("at"), text)
    text = _CONN_STRING_PAIR.sub(
        lambda m: m.group(0) if not _looks_like_value(m.group("secret")) else m.group("head") + REDACTED, text)
    text = _AUTH_HEADER.sub(
        lambda m: m.group("head") + REDACTED if re.search(r"\d", m.group("secret")) else m.group(0), text)

    def quoted(match: re.Match[str]) -> str:
        if not _looks_like_value(match.group("secret")):
            return match.group(0)
        return match.group("head") + REDACTED + match.group("q")

    text = _ASSIGNMENT_QUOTED.sub(quoted, text)

    def bare(match: re.Match[str]) -> str:
        secret = match.group("secret")
        if not _looks_like_value(secret) or re.match(r"^[A-Za-z_][\w.]*$", secret) and not re.search(r"\d", secret):
            return match.group(0)  # an identifier on the right-hand side is code, not a secret
        return match.group("head") + REDACTED

    return _ASSIGNMENT_BARE.sub(bare, text)


_CACHE: OrderedDict[bytes, str] = OrderedDict()
_CACHE_CHARS = 0
_CACHE_MAX_CHARS = 64_000_000


def redact_cached(text: str) -> str:
    """:func:`redact` memoised by content hash: repository chunks are redacted once, not per request."""
    global _CACHE_CHARS
    if len(text) < 256:
        return redact(text)
    key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    value = redact(text)
    _CACHE[key] = value
    _CACHE_CHARS += len(value)
    while _CACHE_CHARS > _CACHE_MAX_CHARS and _CACHE:
        _, old = _CACHE.popitem(last=False)
        _CACHE_CHARS -= len(old)
    return value
