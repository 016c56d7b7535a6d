"""Web-search providers behind one small interface, chosen by COPYHOUND_SEARCH_* settings.

    COPYHOUND_SEARCH_PROVIDER  searxng | bing
    COPYHOUND_SEARCH_URL       base URL: the SearXNG instance, or the Bing endpoint
                               (default https://api.bing.microsoft.com)
    COPYHOUND_SEARCH_KEY       API key (Bing: sent as Ocp-Apim-Subscription-Key)
    COPYHOUND_SEARCH_TIMEOUT   seconds per request (default 15)

HTTP goes through urllib with a timeout. 429 and 5xx answers and connection
failures are retried a bounded number of times with exponential backoff (a 429's
Retry-After is honoured up to a cap); every other failure is one `SearchError` whose
message says what to fix. The key never appears in a message or a log line: it
travels in a header, and URLs in messages lose their query and user info.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from crawler.alerts.errors import ConfigError

logger = logging.getLogger("copyhound.search")

PROVIDER_ENV = "COPYHOUND_SEARCH_PROVIDER"
URL_ENV = "COPYHOUND_SEARCH_URL"
KEY_ENV = "COPYHOUND_SEARCH_KEY"
TIMEOUT_ENV = "COPYHOUND_SEARCH_TIMEOUT"
BING_DEFAULT_URL = "https://api.bing.microsoft.com"
USER_AGENT = "copyhound/0.1 (+search discovery)"
MAX_BODY = 5_000_000
MAX_RETRY_AFTER = 30.0


class SearchError(OSError):
    """A search request failed; the message names the provider and what to do."""


class SearchAuthError(SearchError):
    """The provider refused the credentials (HTTP 401/403)."""


@dataclass(frozen=True)
class SearchResult:
    url: str
    title: str = ""
    snippet: str = ""


@runtime_checkable
class SearchProvider(Protocol):
    """Anything that answers a query with result URLs. `count` is an upper bound."""

    name: str

    def search(self, query: str, *, count: int) -> list[SearchResult]: ...


def _safe(url: str) -> str:
    """A URL fit for a message: no user info, no query (which may carry a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class _Http:
    """GET a JSON document with a timeout and bounded retries."""

    provider: str
    timeout: float = 15.0
    retries: int = 3
    backoff: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None,
                 auth_hint: str = "") -> Any:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json",
                                                       **(headers or {})})
        where = _safe(url)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            delay = self.backoff * (2 ** attempt)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    body = response.read(MAX_BODY + 1)
                break
            except urllib.error.HTTPError as err:
                status = err.code
                err.close()
                if status in (401, 403):
                    raise SearchAuthError(
                        f"{self.provider} at {where} answered HTTP {status}: {auth_hint or 'access denied'}"
                    ) from None
                if status == 429 or status >= 500:
                    if last:
                        raise SearchError(
                            f"{self.provider} at {where} answered HTTP {status} {self.retries + 1} times: "
                            "the provider is overloaded or down, try later"
                        ) from None
                    retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
                    wait = min(retry_after, MAX_RETRY_AFTER) if retry_after is not None else delay
                    logger.info("%s answered HTTP %d, retry %d/%d in %.1fs", self.provider, status, attempt + 1,
                                self.retries, wait)
                    self.sleep(wait)
                    continue
                raise SearchError(f"{self.provider} at {where} answered HTTP {status}: check {URL_ENV}") from None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                if last:
                    raise SearchError(
                        f"{self.provider} at {where} is unreachable ({reason}): is it running, and is {URL_ENV} right?"
                    ) from None
                logger.info("%s unreachable (%s), retry %d/%d", self.provider, reason, attempt + 1, self.retries)
                self.sleep(delay)
        if len(body) > MAX_BODY:
            raise SearchError(f"{self.provider} at {where} sent more than {MAX_BODY} bytes: not a search response")
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SearchError(f"{self.provider} at {where} did not answer with JSON ({err.__class__.__name__}: "
                              f"{str(err)[:80]}): is {URL_ENV} the API endpoint?") from None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _results(items: Any, url_key: str, title_key: str, snippet_key: str, provider: str, where: str) -> list[SearchResult]:
    if not isinstance(items, list):
        raise SearchError(f"{provider} at {where} answered JSON without a result list: is {URL_ENV} the API endpoint?")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = item.get(url_key)
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            out.append(SearchResult(url, str(item.get(title_key) or ""), str(item.get(snippet_key) or "")))
    return out


class SearxngProvider:
    """A SearXNG instance's JSON API: GET {base}/search?q=...&format=json.

    The instance must list `json` under `search.formats` in its settings.yml, or it
    answers 403. SearXNG has no count parameter: pages (`pageno`) are fetched until
    `count` results or an empty page, at most `max_pages`.
    """

    name = "searxng"

    def __init__(self, base_url: str, *, timeout: float = 15.0, retries: int = 3, backoff: float = 1.0,
                 max_pages: int = 2, sleep: Callable[[float], None] = time.sleep) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{URL_ENV} must be an http(s) URL of the SearXNG instance, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.max_pages = max_pages
        self.http = _Http("SearXNG", timeout=timeout, retries=retries, backoff=backoff, sleep=sleep)

    def search(self, query: str, *, count: int) -> list[SearchResult]:
        results: list[SearchResult] = []
        for page in range(1, self.max_pages + 1):
            params = urllib.parse.urlencode({"q": query, "format": "json", "pageno": page})
            url = f"{self.base_url}/search?{params}"
            data = self.http.get_json(
                url, auth_hint="enable the json format (search.formats in its settings.yml) or allow this client"
            )
            if not isinstance(data, dict):
                raise SearchError(f"SearXNG at {_safe(url)} answered JSON that is not an object")
            found = _results(data.get("results"), "url", "title", "content", "SearXNG", _safe(url))
            results.extend(found)
            if not found or len(results) >= count:
                break
        return results[:count]


class BingProvider:
    """Bing Web Search API v7: GET {endpoint}/v7.0/search?q=..&count=.. with the key in
    the Ocp-Apim-Subscription-Key header; results in webPages.value[{url,name,snippet}].

    Microsoft retired the public Bing Search APIs in August 2025; this client speaks
    the documented v7 format for endpoints that still serve it.
    """

    name = "bing"
    MAX_COUNT = 50  # the API's own limit per request

    def __init__(self, key: str, *, endpoint: str = BING_DEFAULT_URL, timeout: float = 15.0, retries: int = 3,
                 backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        if not key:
            raise ConfigError(f"{KEY_ENV} is not set: the Bing Web Search API needs a subscription key")
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"{URL_ENV} must be an http(s) URL of the Bing endpoint, got {endpoint!r}")
        self._key = key
        self.endpoint = endpoint.rstrip("/")
        self.http = _Http("Bing", timeout=timeout, retries=retries, backoff=backoff, sleep=sleep)

    def __repr__(self) -> str:  # never show the key
        return f"BingProvider(endpoint={self.endpoint!r})"

    def search(self, query: str, *, count: int) -> list[SearchResult]:
        params = urllib.parse.urlencode(
            {"q": query, "count": max(1, min(count, self.MAX_COUNT)), "responseFilter": "Webpages"}
        )
        url = f"{self.endpoint}/v7.0/search?{params}"
        data = self.http.get_json(url, headers={"Ocp-Apim-Subscription-Key": self._key},
                                  auth_hint=f"{KEY_ENV} rejected")
        if not isinstance(data, dict):
            raise SearchError(f"Bing at {_safe(url)} answered JSON that is not an object")
        pages = data.get("webPages")
        if pages is None:  # no web results for this query: Bing leaves the answer out
            if "_type" not in data:
                raise SearchError(f"Bing at {_safe(url)} answered JSON that is not a SearchResponse: check {URL_ENV}")
            return []
        if not isinstance(pages, dict):
            raise SearchError(f"Bing at {_safe(url)} answered a webPages that is not an object")
        return _results(pages.get("value"), "url", "name", "snippet", "Bing", _safe(url))[:count]


PROVIDERS = ("searxng", "bing")


def provider_from_env(env: Mapping[str, str] | None = None, **options: Any) -> SearchProvider:
    """The provider the COPYHOUND_SEARCH_* settings describe; ConfigError naming the
    setting when they are missing or wrong. `options` go to the client (timeout...)."""
    env = os.environ if env is None else env
    name = env.get(PROVIDER_ENV, "").strip().lower()
    url = env.get(URL_ENV, "").strip()
    key = env.get(KEY_ENV, "").strip()
    timeout_text = env.get(TIMEOUT_ENV, "").strip()
    if timeout_text:
        try:
            options.setdefault("timeout", float(timeout_text))
        except ValueError:
            raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds, not {timeout_text!r}") from None
        if options["timeout"] <= 0:
            raise ConfigError(f"{TIMEOUT_ENV} must be more than 0 seconds, not {timeout_text}")
    if not name:
        raise ConfigError(f"{PROVIDER_ENV} is not set: choose {' or '.join(PROVIDERS)} to use search discovery")
    if name == "searxng":
        if not url:
            raise ConfigError(f"{URL_ENV} is not set: give the base URL of your SearXNG instance")
        return SearxngProvider(url, **options)
    if name == "bing":
        return BingProvider(key, endpoint=url or BING_DEFAULT_URL, **options)
    raise ConfigError(f"{PROVIDER_ENV}={name!r} is not a provider: choose {' or '.join(PROVIDERS)}")


def search_configured(env: Mapping[str, str] | None = None) -> str | None:
    """None when a provider is configured, else the reason it is not (for warnings)."""
    try:
        provider_from_env(env)
    except ConfigError as err:
        return str(err)
    return None


__all__ = [
    "BingProvider",
    "PROVIDERS",
    "SearchAuthError",
    "SearchError",
    "SearchProvider",
    "SearchResult",
    "SearxngProvider",
    "provider_from_env",
    "search_configured",
]
