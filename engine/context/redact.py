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


def redact_reference(text: str) -> str:
    """Every pattern over the whole text: the definition :func:`redact` must agree with (tests compare)."""
    if not text:
        return text
    text = _PRIVATE_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}-----\n{REDACTED}\n-----END {m.group(1)}-----", text)
    return _redact_values(text)


def _redact_values(text: str) -> str:
    """Every pattern but private key blocks."""
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


# Every pattern below (except private key blocks) needs one of these literals (lower-cased) on the line
# where its match starts; lines without any are skipped, so redacting ordinary code is a few substring
# searches instead of a dozen regular-expression passes over the whole text.
_NEEDLES = (
    "akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa",  # AWS
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "sk-", "aiza", "_live_", "hf_", "eyj",
    "://",  # URL credentials
    "accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "password=", "pwd=",  # connection strings
    "bearer", "basic", "token",  # authorization headers
    # assignments: the secret-looking names
    "passw", "pwd", "secret", "apikey", "api_key", "api-key", "accesskey", "access_key", "access-key",
    "privatekey", "private_key", "private-key", "authkey", "auth_key", "auth-key", "credential",
)
_SEGMENT_EXTRA_LINES = 3  # a match may continue over whitespace onto following lines (``x =\n "v"``)


def _candidate_lines(low: str) -> list[int]:
    """Start offsets of lines holding a needle (sorted, unique)."""
    starts: set[int] = set()
    for needle in _NEEDLES:
        pos = low.find(needle)
        while pos >= 0:
            line_start = low.rfind("\n", 0, pos) + 1
            starts.add(line_start)
            nl = low.find("\n", pos)
            if nl < 0:
                break
            pos = low.find(needle, nl + 1)
    return sorted(starts)


def redact(text: str) -> str:
    """``text`` with secret-looking values replaced by ``<redacted>``.

    Same result as applying every pattern to the whole text (:func:`redact_reference`), computed only on
    the lines that can match: a line holding a needle, the blank lines after it and a few more.
    """
    if not text:
        return text
    if "-----BEGIN" in text:
        text = _PRIVATE_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}-----\n{REDACTED}\n-----END {m.group(1)}-----", text)
    low = text.lower()
    starts = _candidate_lines(low)
    if not starts:
        return text
    n = len(text)
    segments: list[tuple[int, int]] = []
    for start in starts:
        end = text.find("\n", start)
        end = n if end < 0 else end + 1
        extra = _SEGMENT_EXTRA_LINES
        while end < n and extra > 0:
            nxt = text.find("\n", end)
            nxt = n if nxt < 0 else nxt + 1
            if text[end:nxt].strip():
                extra -= 1
            end = nxt
        if segments and start <= segments[-1][1]:
            segments[-1] = (segments[-1][0], max(end, segments[-1][1]))
        else:
            segments.append((start, end))
    out: list[str] = []
    prev = 0
    for start, end in segments:
        out.append(text[prev:start])
        out.append(_redact_values(text[start:end]))
        prev = end
    out.append(text[prev:])
    return "".join(out)


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
