"""python-telegram-bot's HTTP requests made with aiohttp's client.

PTB sends its Bot API requests through a :class:`telegram.request.BaseRequest`; its default,
``HTTPXRequest``, uses httpx, whose connection pool (httpcore) re-examines every connection
and every waiting request each time a request starts or ends. A bot answering many citizens at
once keeps many requests in flight, and that bookkeeping became the largest cost of an update
(profiled with ``bench/telegram_load.py``). ``BaseRequest`` is PTB's documented extension point
for another HTTP library; aiohttp (already the web server of the project) keeps its
connections in a pool that costs the same whatever the number of requests in flight.

Timeouts keep PTB's meaning: ``connect_timeout`` to open a connection, ``read_timeout`` between
two reads, ``pool_timeout`` to wait for a free connection. aiohttp has no timeout for writing
alone: the whole request is bounded by the sum of the four, so that none hangs for ever.
Timeouts become PTB's ``TimedOut``, network failures its ``NetworkError``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """A :class:`~telegram.request.BaseRequest` on one ``aiohttp.ClientSession``."""

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_proxies",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 8,
        *,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 30.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _proxy(self, url: str) -> str | None:
        """The proxy of the environment for ``url`` (HTTPS_PROXY, NO_PROXY...), as httpx (PTB's
        default) honours it: an agency's network often reaches the Internet through one.
        Looked up once per origin (aiohttp's trust_env would read the environment, and netrc,
        at every request: ~1 ms of CPU per update under load)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "")
        if origin not in self._proxies:
            bypass = proxy_bypass(origin[1]) if origin[1] else True
            self._proxies[origin] = None if bypass else getproxies().get(origin[0])
        return self._proxies[origin]

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                # PTB reads every answer itself (errors included): never raise on a status
                raise_for_status=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        # aiohttp's "connect" includes the wait for a free connection of the pool.
        acquire = None if pool is None or connect is None else pool + connect
        total = (
            acquire + write + read
            if acquire is not None and write is not None and read is not None
            else None
        )
        timeout = aiohttp.ClientTimeout(
            total=total, connect=acquire, sock_connect=connect, sock_read=read
        )
        body: Any = None
        if files:
            form = aiohttp.FormData(quote_fields=False)
            for name, value in (request_data.json_parameters if request_data else {}).items():
                form.add_field(name, value)
            for name, part in files.items():
                filename, content, mime = _file_part(part)
                form.add_field(name, content, filename=filename, content_type=mime)
            body = form
        headers = None
        if not files and request_data is not None and request_data.parameters:
            # A form, as PTB's own HTTPXRequest sends it, encoded once here (cheaper than
            # aiohttp's form machinery for every message).
            body = request_data.url_encoded_parameters().encode()
            headers = _FORM
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, proxy=self._proxy(url)
            ) as response:
                payload = await response.read()
                return response.status, payload
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err


def _file_part(part: Any) -> tuple[str | None, Any, str | None]:
    """``multipart_data`` values: ``(filename, content, mime type)`` (PTB's InputFile)."""
    if isinstance(part, tuple):
        filename = part[0] if len(part) > 0 else None
        content = part[1] if len(part) > 1 else b""
        mime = part[2] if len(part) > 2 else None
        return filename, content, mime
    return None, part, None
