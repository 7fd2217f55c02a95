"""The caller's record from the customer's CRM (CTI Premium), for the ringing event.

A customer sets a URL template with ``{number}`` (the caller's number, E.164 where known,
URL-encoded); the platform GETs it and expects JSON ``{"name", "company", "link"}`` (any may be
missing). A slow or dead CRM never holds a call: the proxies do not wait for events at all, and
the event waits at most TIMEOUT for the answer, then goes out without it. Answers (also "no
record" and failures) are cached, so a CRM that is down is not asked again for every call, and
the lookup is started already when the call is routed (``prefetch``), usually well before the
first 180 comes back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import quote

import httpx

from pbx_app import outbound

log = logging.getLogger("pbx_app.crm")

TIMEOUT = 1.5  # seconds an event waits for the CRM, from the start of the lookup
FOUND_TTL = 300.0
MISSING_TTL = 60.0  # no record, an error or a timeout: asked again after this
MAX_ENTRIES = 10_000
FIELDS = ("name", "company", "link")
MAX_FIELD = 200

Record = dict[str, str]
Fetch = Callable[[str], Any]


def url_for(template: str, number: str) -> str:
    return template.replace("{number}", quote(number, safe=""))


def record_from(answer: Any) -> Record | None:
    """The fields we show, as short text; a link only if it is http(s)."""
    if not isinstance(answer, dict):
        return None
    record = {
        k: str(answer[k])[:MAX_FIELD]
        for k in FIELDS
        if isinstance(answer.get(k), str | int) and str(answer[k]).strip()
    }
    if "link" in record and not record["link"].startswith(("https://", "http://")):
        del record["link"]
    return record or None


class CrmLookup:
    def __init__(
        self,
        deny: Sequence[outbound.Network] = (),
        timeout: float = TIMEOUT,
        fetch: Fetch | None = None,
    ) -> None:
        self.deny, self.timeout = tuple(deny), timeout
        self._fetch = fetch or self._http_get
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pbx-crm")
        # Reentrant: a lookup that is done already runs its callback (_expire) at once, in
        # the thread that holds the lock.
        self._lock = threading.RLock()
        # (template, number) -> (expires at, future of the record)
        self._cache: OrderedDict[tuple[str, str], tuple[float, Future[Record | None]]] = (
            OrderedDict()
        )

    def _http_get(self, url: str) -> Any:
        outbound.check(url, self.deny)
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            response = client.get(url, headers={"Accept": "application/json"})
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def _run(self, url: str) -> Record | None:
        try:
            return record_from(self._fetch(url))
        except Exception as exc:
            log.warning("CRM lookup %s failed: %s", url.split("?", 1)[0], exc)
            return None

    def prefetch(self, template: str, number: str) -> Future[Record | None]:
        """The lookup for ``number``: a cached or running one, else a new one."""
        key, now = (template, number), time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and (hit[0] > now or not hit[1].done()):
                self._cache.move_to_end(key)
                return hit[1]
            future = self._pool.submit(self._run, url_for(template, number))
            self._cache[key] = (now + FOUND_TTL, future)
            future.add_done_callback(lambda f: self._expire(key, f))
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
            return future

    def _expire(self, key: tuple[str, str], future: Future[Record | None]) -> None:
        ttl = FOUND_TTL if future.result() else MISSING_TTL
        with self._lock:
            if key in self._cache and self._cache[key][1] is future:
                self._cache[key] = (time.monotonic() + ttl, future)

    def lookup(self, template: str, number: str, wait: float | None = None) -> Record | None:
        """The record, waiting at most ``wait`` seconds (default: the timeout)."""
        future = self.prefetch(template, number)
        try:
            return future.result(timeout=self.timeout if wait is None else max(0.0, wait))
        except FutureTimeout:
            log.warning("CRM lookup of %s took over %.1f s: the event goes without", number, wait)
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
