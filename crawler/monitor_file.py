"""The monitor file: stories, their sources, schedules, alerts and licences as TOML.

`load_monitor_file(path)` parses and validates the whole file and returns a
`MonitorConfig`, or raises `MonitorFileError` listing every problem as
`FILE:LINE: PATH: what is wrong` (PATH like `stories[1].schedule.every`, indices
from 0). tomllib reports no positions for values, so `_KeyLines` scans the source
for table headers and `key =` lines to find the line of each path. Nothing here
touches the database or the network: `crawler.monitor_apply` does that.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.alerts import policy
from crawler.search.discovery import DEFAULT_MAX_PHRASES, DEFAULT_MAX_RESULTS, MAX_RESULTS_LIMIT

MAX_FILE_BYTES = 2_000_000
DIGESTS = ("immediate", "hourly", "daily")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Path_ = tuple[str | int, ...]


class MonitorFileError(ValueError):
    """Every problem found in one monitor file, one `FILE:LINE: PATH: message` per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- validated configuration --------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A position in the monitor file, for errors found later (a fetch that fails)."""

    file: str
    line: int
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}"


@dataclass
class AlertSpec:
    channel: str  # "email" | "webhook"
    target: str
    secret_env: str | None = None
    digest: str = "immediate"
    events: list[str] | None = None


@dataclass
class LicenceSpec:
    domain: str
    credit: str | None = None


@dataclass
class HolderSpec:
    name: str
    alerts: list[AlertSpec] = field(default_factory=list)
    licences: list[LicenceSpec] = field(default_factory=list)


@dataclass
class SearchSpec:
    enabled: bool = False
    max_results: int = DEFAULT_MAX_RESULTS
    max_phrases: int = DEFAULT_MAX_PHRASES

    def options(self) -> dict[str, int]:
        return {"max_results": self.max_results, "max_phrases": self.max_phrases}


@dataclass
class StorySpec:
    where: Where
    url: str | None
    file: Path | None
    title: str | None
    holder: str | None
    canonical_url: str | None
    sources: list[tuple[str, str]]
    max_depth: int
    max_pages: int
    search: SearchSpec | None  # None: the file does not say (leave as it is)
    schedule: dict[str, Any] | None
    licences: list[LicenceSpec] = field(default_factory=list)


@dataclass
class MonitorConfig:
    path: Path
    holders: list[HolderSpec]
    stories: list[StorySpec]


# --- line numbers -------------------------------------------------------------------


class _KeyLines:
    """Line of each table header and `key =` in a TOML source, by value path.

    A small scanner, not a parser: it follows `[table]` and `[[array]]` headers
    (counting array elements per parent), dotted keys, and the keys of an inline
    table written on one line; it skips multi-line strings and comments. Paths it
    cannot place fall back to the nearest enclosing one.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
    _KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
    _INLINE_KEY = re.compile(r"""[{,]\s*([A-Za-z0-9_-]+)\s*=""")

    def __init__(self, source: str) -> None:
        self.lines: dict[Path_, int] = {}
        counts: dict[Path_, int] = {}
        table: Path_ = ()
        in_string: str | None = None
        for number, line in enumerate(source.splitlines(), start=1):
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = self._HEADER.match(line)
            if header and not line.lstrip().startswith("[" * 3):
                parts = self._split(header.group(2))
                parent = self._resolve(parts[:-1], counts)
                if header.group(1) == "[[":
                    array = (*parent, parts[-1])
                    index = counts.get(array, 0)
                    counts[array] = index + 1
                    self.lines.setdefault(array, number)
                    table = (*array, index)
                else:
                    table = (*parent, parts[-1])
                self.lines.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                path = (*table, *self._split(key.group(1)))
                self.lines.setdefault(path, number)
                rest = line[key.end():]
                for inner in self._INLINE_KEY.finditer(rest):
                    self.lines.setdefault((*path, inner.group(1)), number)
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_string = quote

    @staticmethod
    def _split(dotted: str) -> list[str]:
        return [p.strip().strip("\"'") for p in re.findall(r"""(?:"[^"]*"|'[^']*'|[^.]+)""", dotted)]

    @staticmethod
    def _resolve(parts: list[str], counts: dict[Path_, int]) -> Path_:
        """A header's parent path, with the latest element of each array of tables."""
        path: Path_ = ()
        for part in parts:
            path = (*path, part)
            if path in counts:
                path = (*path, counts[path] - 1)
        return path

    def line_of(self, path: Path_) -> int:
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


# --- validation ---------------------------------------------------------------------


class _Checker:
    def __init__(self, path: Path, source: str) -> None:
        self.file = path
        self.name = path.name
        self.lines = _KeyLines(source)
        self.problems: list[tuple[int, str]] = []

    def where(self, path: Path_) -> Where:
        return Where(self.name, self.lines.line_of(path), format_path(path))

    def error(self, path: Path_, message: str) -> None:
        self.problems.append((self.lines.line_of(path), f"{self.where(path)}: {message}"))

    def table(self, value: Any, path: Path_, allowed: dict[str, str], *, required: tuple[str, ...] = (),
              hints: dict[str, str] | None = None) -> dict[str, Any] | None:
        """Check a table's keys: unknown ones (with a suggestion) and missing ones."""
        if not isinstance(value, dict):
            self.error(path, f"expected a table, got {_show(value)}")
            return None
        for key in value:
            if key not in allowed:
                hint = (hints or {}).get(key)
                if hint is None:
                    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                    hint = f'did you mean "{close[0]}"?' if close else f"allowed keys: {', '.join(allowed)}"
                self.error((*path, key), f"unknown key {key!r}: {hint}")
        for key in required:
            if key not in value:
                self.error(path, f"missing required key {key!r} ({allowed[key]})")
        return value

    def array_of_tables(self, value: Any, path: Path_) -> list[Any]:
        if not isinstance(value, list):
            self.error(path, f"expected an array of tables ([[{format_path(path)}]]), got {_show(value)}")
            return []
        return value

    def string(self, value: Any, path: Path_, *, check: Callable[[str], str | None] | None = None) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"expected a non-empty string, got {_show(value)}")
            return None
        problem = check(value.strip()) if check else None
        if problem:
            self.error(path, problem)
            return None
        return value.strip()

    def integer(self, value: Any, path: Path_, *, minimum: int, maximum: int | None = None) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number, got {_show(value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
            self.error(path, f"expected a number {bounds}, got {value}")
            return None
        return value

    def urls(self, value: Any, path: Path_) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.error(path, f"expected a list of http(s) URLs, got {_show(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            url = self.string(item, (*path, i), check=_http_url)
            if url:
                out.append(url)
        return out


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{value!r} ({type(value).__name__})"


def _http_url(value: str) -> str | None:
    if not re.match(r"^https?://[^\s/]+", value):
        return f'expected an http(s) URL, got "{value}"'
    return None


def _email(value: str) -> str | None:
    return None if _EMAIL.match(value) else f'expected an email address, got "{value}"'


def _env_name(value: str) -> str | None:
    if not _ENV_NAME.match(value):
        return f'expected the name of an environment variable (like COPYHOUND_WEBHOOK_SECRET), got "{value}"'
    return None


def _domain(value: str) -> str | None:
    try:
        policy.normalise_domain(value)
    except ValueError as err:
        return str(err)
    return None


TOP = {"defaults": "settings every story starts from", "holders": "rights holders ([[holders]])",
       "stories": "stories to monitor ([[stories]])"}
DEFAULTS = {"max_depth": "link hops from each start URL", "max_pages": "pages per crawl",
            "search": "search discovery: true/false or a table", "schedule": "a table with every or cron"}
HOLDER = {"name": "the rights holder's name", "alerts": "[[holders.alerts]]", "licences": "[[holders.licences]]"}
ALERT = {"email": "an address to email", "webhook": "a URL to POST to",
         "secret_env": "environment variable holding the webhook signing secret",
         "digest": "immediate, hourly or daily", "events": "alert types to receive"}
LICENCE = {"domain": "the licensed partner's domain", "credit": "credit line copies must carry"}
STORY = {"url": "fetch the story from this page", "file": "read the story from this file",
         "title": "story title", "holder": "rights holder name", "canonical_url": "the story's own URL",
         "sources": "a [stories.sources] table", "schedule": "a [stories.schedule] table",
         "licences": "[[stories.licences]]"}
SOURCES = {"start_urls": "sites to crawl", "feeds": "RSS/Atom feeds", "sitemaps": "sitemaps",
           "search": "search discovery: true/false or a table", "max_depth": "link hops from each start URL",
           "max_pages": "pages per crawl"}
SEARCH = {"enabled": "true or false", "max_results": "candidate URLs per crawl",
          "max_phrases": "phrases searched per crawl"}
SCHEDULE = {"every": 'a duration like "1h" or "30m"', "cron": 'a crontab expression like "0 */6 * * *"',
            "jitter": "seconds of random delay"}
_SOURCE_KINDS = {"start_urls": "start_url", "feeds": "feed", "sitemaps": "sitemap"}
_STORY_HINTS = {k: f"{k} belongs in the story's [stories.sources] table" for k in SOURCES if k not in ("max_depth", "max_pages")}
_STORY_HINTS["alerts"] = "alerts belong to the story's holder: add them under [[holders.alerts]]"


def load_monitor_file(path: Path | str) -> MonitorConfig:
    """Parse and validate a monitor file; `MonitorFileError` lists every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise MonitorFileError([f"{path}: cannot read the monitor file: {err.strerror or err}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise MonitorFileError([f"{path.name}:1: the file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise MonitorFileError([f"{path.name}:{line}: not UTF-8 text (TOML files must be UTF-8)"]) from None
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        at_end = "(at end of document)" in message
        line = getattr(err, "lineno", None) or (int(found.group(1)) if found else None)
        if line is None:
            line = max(1, source.count("\n") + (0 if source.endswith("\n") else 1)) if at_end else 1
        message = re.sub(r"\s*\((?:at line \d+, column \d+|at end of document)\)", "", getattr(err, "msg", message))
        raise MonitorFileError([f"{path.name}:{line}: not valid TOML: {message}"]) from None
    return _validate(path, source, data)


def _validate(path: Path, source: str, data: dict[str, Any]) -> MonitorConfig:
    c = _Checker(path, source)
    c.table(data, (), TOP)
    defaults = c.table(data.get("defaults", {}), ("defaults",), DEFAULTS) or {}
    default_depth = c.integer(defaults.get("max_depth"), ("defaults", "max_depth"), minimum=0)
    default_pages = c.integer(defaults.get("max_pages"), ("defaults", "max_pages"), minimum=1)
    default_search = _search(c, defaults.get("search"), ("defaults", "search"))
    default_schedule = _schedule(c, defaults.get("schedule"), ("defaults", "schedule"))

    holders: list[HolderSpec] = []
    names: dict[str, int] = {}
    for i, item in enumerate(c.array_of_tables(data.get("holders", []), ("holders",))):
        at: Path_ = ("holders", i)
        spec = c.table(item, at, HOLDER, required=("name",))
        if spec is None:
            continue
        name = c.string(spec.get("name"), (*at, "name"))
        if name is None:
            continue
        if name in names:
            c.error((*at, "name"), f'holder "{name}" is already declared in holders[{names[name]}]')
            continue
        names[name] = i
        holder = HolderSpec(name)
        for j, alert in enumerate(c.array_of_tables(spec.get("alerts", []), (*at, "alerts"))):
            parsed = _alert(c, alert, (*at, "alerts", j))
            if parsed:
                holder.alerts.append(parsed)
        holder.licences = _licences(c, spec.get("licences", []), (*at, "licences"))
        holders.append(holder)

    stories: list[StorySpec] = []
    seen: dict[tuple[str | None, str], int] = {}
    for i, item in enumerate(c.array_of_tables(data.get("stories", []), ("stories",))):
        at = ("stories", i)
        spec = c.table(item, at, STORY, hints=_STORY_HINTS)
        if spec is None:
            continue
        url = c.string(spec.get("url"), (*at, "url"), check=_http_url)
        file_text = c.string(spec.get("file"), (*at, "file"))
        if ("url" in spec) == ("file" in spec):
            c.error(at, 'give exactly one of "url" (fetch the story) or "file" (read it from a file)')
        file = None
        if file_text is not None:
            file = Path(file_text).expanduser()
            if not file.is_absolute():
                file = (path.parent / file).resolve()
            if not file.is_file():
                c.error((*at, "file"), f'no such file: "{file_text}" (relative paths start at the monitor file\'s folder)')
        holder = c.string(spec.get("holder"), (*at, "holder"))
        key = (holder, url or str(file))
        if (url or file) and key in seen:
            c.error(at, f"the same story is already declared in stories[{seen[key]}]")
        seen[key] = i
        sources_spec = c.table(spec.get("sources", {}), (*at, "sources"), SOURCES) or {}
        sources = [
            (kind, u)
            for key_name, kind in _SOURCE_KINDS.items()
            for u in c.urls(sources_spec.get(key_name), (*at, "sources", key_name))
        ]
        depth = c.integer(sources_spec.get("max_depth"), (*at, "sources", "max_depth"), minimum=0)
        pages = c.integer(sources_spec.get("max_pages"), (*at, "sources", "max_pages"), minimum=1)
        search = _search(c, sources_spec.get("search"), (*at, "sources", "search"))
        schedule = _schedule(c, spec.get("schedule"), (*at, "schedule"))
        stories.append(
            StorySpec(
                where=c.where(at),
                url=url,
                file=file,
                title=c.string(spec.get("title"), (*at, "title")),
                holder=holder,
                canonical_url=c.string(spec.get("canonical_url"), (*at, "canonical_url"), check=_http_url),
                sources=sources,
                max_depth=depth if depth is not None else default_depth if default_depth is not None else 2,
                max_pages=pages if pages is not None else default_pages if default_pages is not None else 200,
                search=search if search is not None else default_search,
                schedule=schedule if schedule is not None else default_schedule,
                licences=_licences(c, spec.get("licences", []), (*at, "licences")),
            )
        )
    if c.problems:
        raise MonitorFileError([message for _line, message in sorted(c.problems, key=lambda p: p[0])])
    return MonitorConfig(path, holders, stories)


def _alert(c: _Checker, value: Any, at: Path_) -> AlertSpec | None:
    spec = c.table(value, at, ALERT)
    if spec is None:
        return None
    if ("email" in spec) == ("webhook" in spec):
        c.error(at, 'give exactly one of "email" (an address) or "webhook" (a URL)')
        return None
    email = c.string(spec.get("email"), (*at, "email"), check=_email)
    webhook = c.string(spec.get("webhook"), (*at, "webhook"), check=_http_url)
    secret_env = c.string(spec.get("secret_env"), (*at, "secret_env"), check=_env_name)
    if secret_env and email:
        c.error((*at, "secret_env"), "secret_env signs webhooks: an email destination has none")
    digest = c.string(spec.get("digest"), (*at, "digest"),
                      check=lambda d: None if d in DIGESTS else f'expected one of {", ".join(DIGESTS)}, got "{d}"')
    events = None
    if "events" in spec:
        raw = spec["events"]
        if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
            c.error((*at, "events"), f"expected a list of alert types, got {_show(raw)}")
        else:
            try:
                events = policy.validate_events(raw)
            except ValueError as err:
                c.error((*at, "events"), str(err))
    target = email or webhook
    if target is None:
        return None
    return AlertSpec("email" if email else "webhook", target, secret_env, digest or "immediate", events)


def _licences(c: _Checker, value: Any, at: Path_) -> list[LicenceSpec]:
    out = []
    for j, item in enumerate(c.array_of_tables(value, at)):
        spec = c.table(item, (*at, j), LICENCE, required=("domain",))
        if spec is None:
            continue
        domain = c.string(spec.get("domain"), (*at, j, "domain"), check=_domain)
        credit = c.string(spec.get("credit"), (*at, j, "credit"))
        if domain:
            out.append(LicenceSpec(policy.normalise_domain(domain), credit))
    return out


def _search(c: _Checker, value: Any, at: Path_) -> SearchSpec | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return SearchSpec(enabled=value)
    spec = c.table(value, at, SEARCH)
    if spec is None:
        return None
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        c.error((*at, "enabled"), f"expected true or false, got {_show(enabled)}")
        enabled = False
    results = c.integer(spec.get("max_results"), (*at, "max_results"), minimum=1, maximum=MAX_RESULTS_LIMIT)
    phrases = c.integer(spec.get("max_phrases"), (*at, "max_phrases"), minimum=1, maximum=20)
    return SearchSpec(enabled, results or DEFAULT_MAX_RESULTS, phrases or DEFAULT_MAX_PHRASES)


def _schedule(c: _Checker, value: Any, at: Path_) -> dict[str, Any] | None:
    """The schedule as `crawler.scheduling.schedule_from_spec` takes it, checked with
    the same rules as `copyhound schedule set`."""
    from crawler.scheduling import make_trigger, parse_duration

    if value is None:
        return None
    spec = c.table(value, at, SCHEDULE)
    if spec is None:
        return None
    if ("every" in spec) == ("cron" in spec):
        c.error(at, 'give exactly one of "every" (a duration like "6h") or "cron" (like "0 */6 * * *")')
        return None
    every = c.string(spec.get("every"), (*at, "every"))
    cron = c.string(spec.get("cron"), (*at, "cron"))
    jitter = c.integer(spec.get("jitter"), (*at, "jitter"), minimum=0)
    if "every" in spec and every is None or "cron" in spec and cron is None or "jitter" in spec and jitter is None:
        return None
    if every is not None:
        try:
            duration = parse_duration(every)
        except ValueError:
            c.error((*at, "every"), f'expected a duration like "1h" or "30m", got "{every}"')
            return None
        try:
            make_trigger(every=duration, jitter=jitter)
        except ValueError as err:
            c.error((*at, "every"), str(err))
            return None
    else:
        try:
            make_trigger(cron=cron, jitter=jitter)
        except ValueError as err:
            c.error((*at, "cron"), str(err))
            return None
    out: dict[str, Any] = {"every": every} if every else {"cron": cron}
    if jitter is not None:
        out["jitter"] = jitter
    return out


__all__ = [
    "AlertSpec",
    "HolderSpec",
    "LicenceSpec",
    "MonitorConfig",
    "MonitorFileError",
    "SearchSpec",
    "StorySpec",
    "Where",
    "format_path",
    "load_monitor_file",
]
