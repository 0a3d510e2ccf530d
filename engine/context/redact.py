"""Replace secret-looking values before any text enters a prompt.

Secret *files* are excluded by the indexer; this catches secrets planted in ordinary source files:
private key blocks, cloud and service access keys, bearer tokens, passwords in assignments and
credentials inside connection strings. The replacement keeps the surrounding code (the variable name,
quotes, the URL's scheme and host) so the model still sees the shape of the code.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict

from engine.context import cache_sizes
from engine.text_digest import text_digest

REDACTED = "<redacted>"
REDACTED_KEY = "<redacted private key>"

#: Key material replaced whole, header line included (a ``BEGIN ... PRIVATE KEY`` line alone names a key).
_KEY_BLOCKS = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)"
    r"|-----BEGIN OpenVPN Static key V1-----.*?(?:-----END OpenVPN Static key V1-----|\Z)"
    r"|PuTTY-User-Key-File-\d+:.*?(?:Private-MAC:[^\n]*|\Z)", re.S)
#: Text that every ``_KEY_BLOCKS`` match holds: a text without any cannot hold a key block.
_KEY_MARKERS = ("PRIVATE KEY", "OpenVPN Static key", "PuTTY-User-Key-File")
#: Token formats of cloud and service providers, each with the literals (lower-cased) one of which its
#: match contains: a pattern runs only over a text holding one. A match must start a word; that is checked
#: on the match (``_at_word_start``), not by a leading ``\b``, which stops the regular-expression engine
#: from skipping ahead to the pattern's first characters (12 ms instead of 1 per 800 KB and pattern).
_TOKEN_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa"),
     re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")),  # AWS access key id
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}\b")),  # GitHub
    (("github_pat_",), re.compile(r"github_pat_[A-Za-z0-9_]{22,255}\b")),
    (("glpat-",), re.compile(r"glpat-[A-Za-z0-9_\-]{20,}\b")),  # GitLab
    (("xox",), re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}\b")),  # Slack
    (("sk-",), re.compile(r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b")),  # OpenAI / Anthropic style
    (("aiza",), re.compile(r"AIza[0-9A-Za-z_\-]{35}\b")),  # Google API key
    (("_live_",), re.compile(r"(?:sk|rk)_live_[0-9A-Za-z]{20,}\b")),  # Stripe
    (("hf_",), re.compile(r"hf_[A-Za-z0-9]{30,}\b")),  # Hugging Face
    (("eyj",), re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b")),  # JWT
    (("npm_",), re.compile(r"npm_[A-Za-z0-9]{36}\b")),  # npm
    (("pypi-",), re.compile(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}")),  # PyPI
    (("sg.",), re.compile(r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b")),  # SendGrid
    (("-us",), re.compile(r"[0-9a-f]{32}-us[0-9]{1,2}\b")),  # Mailchimp
    (("sq0",), re.compile(r"sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,43}\b")),  # Square
    ((":aa",), re.compile(r"[0-9]{8,10}:AA[0-9A-Za-z_\-]{33}\b")),  # Telegram bot
    (("akc",), re.compile(r"(?<![\w/])AKC[a-zA-Z0-9]{10,}\b")),  # Artifactory
    # no literal to look for: Twilio API keys and account ids, Discord bot tokens (one pass for both)
    ((), re.compile(r"(?:(?:AC|SK)[0-9a-fA-F]{32}|[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\."
                    r"[A-Za-z0-9_\-]{27,})\b")),
]
# Key=value pairs inside connection strings (Azure storage, ADO.NET, ODBC): AccountKey=…; Password=…;
_CONN_STRING_PAIR = re.compile(
    r"(?P<head>\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)=)(?P<secret>[^;\s'\"`]{4,})",
    re.I,
)
# HTTP authorization headers written out in code or configuration.
_AUTH_HEADER = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<secret>[A-Za-z0-9_\-.=+/]{20,})")
# scheme://user:password@host (the user may be empty: redis://:pw@host) → keep user and host.
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/@'\"`]*:)(?P<secret>[^\s@'\"`/]+)(?P<at>@)")
# curl -u user:password / --user user:password
_USER_OPTION = re.compile(r"(?P<head>(?:^|\s)(?:-u|--user)[ =]+[^\s:'\"`]*:)(?P<secret>[^\s'\"`]+)")
#: Names whose value is a secret: detect-secrets' keyword list (``api_key``, ``db_pass``, ``password``, …)
#: and ours (tokens, credentials); a name matches anywhere inside an identifier (``DB_PASSWORD``).
_SECRET_WORDS = [
    r"passw(?:or)?d", r"passwd", r"pwd", r"secret", r"token", r"credentials?", r"contrase(?:ñ|n)a",
    r"(?:api|auth|service|account|db|database|priv|private|client|access|encryption|signing|master)[_.\-]?key",
    r"apikey", r"(?:db|database|key)[_.\-]?pass",
]
_EXTRA_WORDS: list[str] = []  # ``configure``: the user's additions
_EXTRA_PATTERNS: list[re.Pattern[str]] = []


def _name_pattern() -> str:
    return r"[A-Za-z0-9_.\-]*(?:" + "|".join(_SECRET_WORDS + _EXTRA_WORDS) + r")[A-Za-z0-9_.\-]*"


def _compile_assignments() -> tuple[re.Pattern[str], re.Pattern[str]]:
    name = _name_pattern()
    # name = "value" / name: 'value' / "name": "value" / NAME: &str = "value" (a type annotation between)
    quoted = re.compile(
        rf"(?P<head>(?P<name>[\"']?{name}[\"']?)(?:[ \t]*:[ \t]*[&\w\[\]<>,' ]{{1,40}}?(?=[ \t]*=))?\s*"
        rf"(?::=|=>|==?|:)\s*(?P<q>[\"'`]))(?P<secret>[^\"'`\n]{{4,}})(?P=q)", re.I)
    # name = value / name: value / export NAME=value / ENV NAME=value / NAME=value cmd, unquoted
    bare = re.compile(
        rf"(?P<head>(?<![\w.\-]){name}[\"'\]]{{0,2}}[ \t]*(?::=|=>|=|:)[ \t]*)(?P<secret>[^\s\"'`,;#]+)", re.I)
    return quoted, bare


_ASSIGNMENT_QUOTED, _ASSIGNMENT_BARE = _compile_assignments()
_NOT_SECRET_VALUES = re.compile(
    r"^(?:\{.*\}|\$\{?\w+\}?|<[^>]*>|%\(?\w+\)?s|None|null|nil|true|false|yes|no|changeme|\*+|x+|[|>][-+]?|"
    r"\*\*\*+|\.\.\.|\d{1,4})$", re.I)
# quoted strings that may be random: detect-secrets' base64 and hex charsets
_QUOTED_RANDOM = re.compile(r"(?P<q>[\"'])(?P<secret>[A-Za-z0-9+/=_\-]{9,})(?P=q)")
# config files: an unquoted value alone after ``key:`` / ``key =`` (detect-secrets reads YAML/INI values as strings)
_CONFIG_VALUE = re.compile(r"(?P<head>^[ \t]*(?:-[ \t]+)?[\w.\-\"']+[ \t]*[:=][ \t]*)(?P<secret>[A-Za-z0-9+/=_\-]{9,})(?=[ \t]*$)",
                           re.M)
_HEX = frozenset("0123456789abcdefABCDEF")

#: File kinds whose values are literals, never code: every value after a secret name is redacted.
_CONFIG_SUFFIXES = (".yaml", ".yml", ".ini", ".cfg", ".conf", ".toml", ".properties", ".env", ".sh", ".bash",
                    ".zsh", ".dockerfile", ".tfvars", ".hcl", ".npmrc", ".pypirc", ".netrc", ".pgpass")
_CONFIG_NAMES = ("dockerfile", "containerfile", ".env", ".npmrc", ".pypirc", ".netrc", ".pgpass", "docker-compose")


def kind_for(path: str | None) -> str:
    """``"config"`` for configuration, environment, container and shell files (values there are literals),
    else ``"code"``."""
    if not path:
        return "code"
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if name.endswith(_CONFIG_SUFFIXES) or name.startswith(_CONFIG_NAMES) or ".env." in name:
        return "config"
    return "code"


def configure(names: list[str] | None = None, patterns: list[str] | None = None) -> None:
    """Add secret names (regular expressions matched inside identifiers, like ``stripe_restricted``) and value
    patterns (regular expressions whose every match is replaced) to the built-in rules (the ``[redaction]``
    settings); process-wide, and cached results are dropped."""
    global _ASSIGNMENT_QUOTED, _ASSIGNMENT_BARE, _CACHE_CHARS, _CACHE_GENERATION
    _EXTRA_WORDS[:] = [n for n in names or [] if n]
    _EXTRA_PATTERNS[:] = [re.compile(p) for p in patterns or [] if p]
    _ASSIGNMENT_QUOTED, _ASSIGNMENT_BARE = _compile_assignments()
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE_CHARS = 0
        _CACHE_GENERATION += 1  # a text being redacted under the old rules now is not stored


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def looks_random(value: str) -> bool:
    """What detect-secrets calls a high-entropy string: hex above 3.0 bits per character (a digits-only one
    is discounted, as detect-secrets does), other base64-alphabet strings above 4.5."""
    if all(c in _HEX for c in value):
        h = entropy(value)
        if value.isdigit():
            h -= 1.2 / math.log2(len(value))
        return h > 3.0
    return len(value) >= 20 and entropy(value) > 4.5


def _looks_like_value(value: str) -> bool:
    """Skip placeholders and code (``os.environ[...]``, ``${VAR}``) so only literal values are replaced."""
    if _NOT_SECRET_VALUES.match(value):
        return False
    return not re.search(r"[(){}\[\]]|\s", value)


def _looks_like_code_literal(value: str) -> bool:
    """In source code an unquoted right-hand side is usually code (``password = user_input``): only a token
    that mixes letters with digits or symbols and holds no code punctuation counts as a literal."""
    return (_looks_like_value(value) and len(value) >= 6 and not re.search(r"[.,<>:]", value)
            and bool(re.search(r"[A-Za-z]", value)) and bool(re.search(r"[\d\-+/=!@$%^&*~]", value)))


def may_hold_key_block(text: str) -> bool:
    """Whether ``text`` can hold a key block (one may then span any cut of it: redact the whole text first)."""
    return any(marker in text for marker in _KEY_MARKERS)


def _at_word_start(pattern: re.Pattern[str], text: str) -> str:
    """``pattern``'s matches that start a word replaced by ``<redacted>``."""
    def replace(match: re.Match[str]) -> str:
        i = match.start()
        return match.group(0) if i and (text[i - 1].isalnum() or text[i - 1] == "_") else REDACTED

    return pattern.sub(replace, text)


def redact_reference(text: str, kind: str = "code") -> str:
    """Every pattern over the whole text: the definition :func:`redact` must agree with (tests compare)."""
    if not text:
        return text
    return _redact_values(_redact_whole(text, kind), kind)


def _redact_whole(text: str, kind: str) -> str:
    """The rules that need no needle (one pass over the whole text each): key blocks, the token formats of
    cloud and service providers, random-looking quoted strings, random-looking config values, the user's
    patterns."""
    if may_hold_key_block(text):
        text = _KEY_BLOCKS.sub(REDACTED_KEY, text)
    low = text.lower()
    for needles, pattern in _TOKEN_PATTERNS:
        if not needles or any(n in low for n in needles):
            text = _at_word_start(pattern, text)
    text = _QUOTED_RANDOM.sub(
        lambda m: m.group("q") + REDACTED + m.group("q") if looks_random(m.group("secret")) else m.group(0), text)
    if kind == "config":
        text = _CONFIG_VALUE.sub(
            lambda m: m.group("head") + REDACTED if looks_random(m.group("secret")) else m.group(0), text)
    for pattern in _EXTRA_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _redact_values(text: str, kind: str = "code") -> str:
    """Every pattern that a needle guards: credentials in URLs, options, connection strings and headers, and
    values assigned to secret names."""
    text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED + m.group("at"), text)
    text = _USER_OPTION.sub(
        lambda m: m.group("head") + REDACTED if _looks_like_value(m.group("secret")) else m.group(0), text)
    text = _CONN_STRING_PAIR.sub(
        lambda m: m.group(0) if not _looks_like_value(m.group("secret")) else m.group("head") + REDACTED, text)
    text = _AUTH_HEADER.sub(
        lambda m: m.group("head") + REDACTED if re.search(r"\d", m.group("secret")) else m.group(0), text)

    def quoted(match: re.Match[str]) -> str:
        if not _looks_like_value(match.group("secret")):
            return match.group(0)
        return match.group("head") + REDACTED + match.group("q")

    text = _ASSIGNMENT_QUOTED.sub(quoted, text)
    literal = _looks_like_value if kind == "config" else _looks_like_code_literal

    def bare(match: re.Match[str]) -> str:
        return match.group("head") + REDACTED if literal(match.group("secret")) else match.group(0)

    return _ASSIGNMENT_BARE.sub(bare, text)


# Every pattern of ``_redact_values`` needs one of these literals (lower-cased) on the line where its match
# starts; lines without any are skipped, so redacting ordinary code is a few substring searches instead of
# the assignment patterns over the whole text. (A user's extra names have no needle: with any configured,
# every line is a candidate.)
_NEEDLES = (
    "://",  # URL credentials
    "-u", "--user",  # curl
    "accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "password=", "pwd=",  # connection strings
    "bearer", "basic", "token",  # authorization headers
    # assignments: the words of the secret names
    "passw", "pwd", "secret", "credential", "contrase", "key", "pass",
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


def redact(text: str, kind: str = "code") -> str:
    """``text`` with secret-looking values replaced by ``<redacted>`` (key blocks by ``<redacted private key>``);
    ``kind`` is :func:`kind_for` of the file the text comes from.

    Same result as applying every pattern to the whole text (:func:`redact_reference`), computed only on
    the lines that can match: a line holding a needle, the blank lines after it and a few more.
    """
    if not text:
        return text
    text = _redact_whole(text, kind)
    if _EXTRA_WORDS:
        return _redact_values(text, kind)
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
        out.append(_redact_values(text[start:end], kind))
        prev = end
    out.append(text[prev:])
    return "".join(out)


_CACHE: OrderedDict[bytes, str] = OrderedDict()
_CACHE_CHARS = 0
# The cache is process-wide and used from several threads at once (the inference worker's prompts, chat's
# repository tools in their pool): every look-up and store holds this lock, the redaction itself does not.
_CACHE_LOCK = threading.Lock()
_CACHE_GENERATION = 0  # bumped by ``configure``: results redacted under earlier rules are never cached
# Sized from the largest budget in use (``reserve_cache``, ``engine.context.cache_sizes``): every repository
# chunk of a prompt stays a hit, and the cache is full (flat) early in a session rather than growing for hours.
_CACHE_MAX_CHARS = cache_sizes.MIN_CHARS


def cache_limit() -> int:
    """Characters of redacted text the cache keeps at most (``reserve_cache`` raises it)."""
    return _CACHE_MAX_CHARS


def cached_chars() -> int:
    """Characters of redacted text the cache holds now (``coderflash/status``: how full it is)."""
    return _CACHE_CHARS


def reserve_cache(chars: int) -> None:
    """Keep at least ``chars`` characters of redacted text from now on (process-wide; never shrinks)."""
    global _CACHE_MAX_CHARS
    _CACHE_MAX_CHARS = max(_CACHE_MAX_CHARS, chars)


def redact_cached(text: str, kind: str = "code") -> str:
    """:func:`redact` memoised by content hash: repository chunks are redacted once, not per request."""
    global _CACHE_CHARS
    if len(text) < 256:
        return redact(text, kind)
    key = text_digest(text) + kind.encode()
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
        generation = _CACHE_GENERATION
    value = redact(text, kind)
    with _CACHE_LOCK:
        if generation != _CACHE_GENERATION:  # the rules changed meanwhile: this result is not for the cache
            return value
        raced = _CACHE.get(key)  # another thread redacted the same text meanwhile: keep one, count it once
        if raced is not None:
            _CACHE.move_to_end(key)
            return raced
        _CACHE[key] = value
        _CACHE_CHARS += len(value)
        while _CACHE_CHARS > _CACHE_MAX_CHARS and _CACHE:
            _, old = _CACHE.popitem(last=False)
            _CACHE_CHARS -= len(old)
    return value
