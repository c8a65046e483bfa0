"""Shared helpers of the web chat's tests and benchmark: the app under test on a real database,
and a scripted citizen that reads the pages (or the chat script's JSON) and answers them over
real HTTP, as a browser without (or with) JavaScript does."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from aiohttp import ClientResponse, ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.access_log import AccessLogger
from bot.web.app import CHANNEL, create_app
from bot.web.channel import WebChannel
from storage.settings import Settings
from tests.telegram_helpers import LEVERS_FR, NEED_FR, SOLUTION_FR, open_campaign_file


def web_settings(settings: Settings, **extra: Any) -> Settings:
    """``settings`` with a campaign open today (the shipped one closed in 2022)."""
    values = settings.model_dump()
    if values["default_campaign_file"] == Settings().default_campaign_file:
        values["default_campaign_file"] = str(open_campaign_file(settings.secret_file.parent))
    values.update(extra)
    return Settings(**values)


@dataclass
class WebChat:
    server: TestServer
    settings: Settings

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    @property
    def app(self) -> web.Application:
        return self.server.app

    @property
    def channel(self) -> WebChannel:
        return self.app[CHANNEL]


@contextlib.asynccontextmanager
async def running_web(settings: Settings, **extra: Any) -> AsyncIterator[WebChat]:
    """The real web chat app on a real listener (127.0.0.1, a free port)."""
    settings = web_settings(settings, **extra)
    # The rate limits count in fixed windows (minutes, hours): a clock that stands still
    # keeps a test from straddling the end of one.
    still = datetime.now(UTC).replace(second=30, microsecond=0)
    app = create_app(settings, maintenance_interval=3600, clock=lambda: still)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log_class=AccessLogger)  # as `cnrbot web` logs
    try:
        yield WebChat(server, settings)
    finally:
        await server.close()


async def count(chat: WebChat, model: type, *where: Any) -> int:
    """Rows of ``model`` (matching ``where``) in the web chat's database."""
    async with chat.channel.service.sessions() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int(await session.scalar(stmt) or 0)


# --- reading a page ----------------------------------------------------------------------------


@dataclass
class Button:
    name: str
    value: str
    label: str


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[Button] = field(default_factory=list)
    textarea: str | None = None


class PageReader(HTMLParser):
    """The parts of a web chat page a citizen acts on: the replies (bubbles), the answer form
    (#reponse), the menu (#menu), a problem shown, notices."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.replies: list[str] = []
        self.mine: list[str] = []
        self.forms: dict[str, Form] = {}
        self.problem = ""
        self.notices: list[str] = []
        self._form: Form | None = None
        self._bubble: list[str] | None = None
        self._bubble_kind = ""
        self._button: Button | None = None
        self._textarea: list[str] | None = None
        self._alert: list[str] | None = None
        self._alert_kind = ""
        self._depth = 0
        self._sr = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "form":
            self._form = self.forms.setdefault(a.get("id", ""), Form())
        elif tag == "li" and "chat__msg" in classes:
            self._bubble = []
            self._bubble_kind = "me" if "chat__msg--me" in classes else "bot"
        elif tag == "span" and ("fr-sr-only" in classes or self._sr):
            self._sr += 1
        elif tag == "br" and self._bubble is not None:
            self._bubble.append("\n")
        elif tag == "p" and self._bubble is not None and self._bubble:
            self._bubble.append("\n\n")
        elif tag == "input" and self._form is not None and a.get("type") == "hidden":
            self._form.fields[a.get("name", "")] = a.get("value", "")
        elif tag == "button" and self._form is not None:
            self._button = Button(a.get("name", ""), a.get("value", ""), "")
        elif tag == "textarea" and self._form is not None and a.get("name") == "text":
            self._textarea = []
        elif tag == "div" and "fr-alert" in classes:
            self._alert = []
            self._alert_kind = "info" if "fr-alert--info" in classes else "error"

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "span" and self._sr:
            self._sr -= 1
        elif tag == "li" and self._bubble is not None:
            text = "".join(self._bubble).strip()
            (self.mine if self._bubble_kind == "me" else self.replies).append(text)
            self._bubble = None
        elif tag == "button" and self._button is not None and self._form is not None:
            self._button.label = " ".join(self._button.label.split())
            self._form.buttons.append(self._button)
            self._button = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.textarea = "".join(self._textarea)
            self._textarea = None
        elif tag == "div" and self._alert is not None:
            text = " ".join("".join(self._alert).split())
            if self._alert_kind == "info":
                self.notices.append(text)
            else:
                self.problem = text
            self._alert = None

    def handle_data(self, data: str) -> None:
        if self._sr:
            return
        if self._bubble is not None:
            self._bubble.append(data)
        if self._button is not None:
            self._button.label += data
        if self._textarea is not None:
            self._textarea.append(data)
        if self._alert is not None:
            self._alert.append(data)


def read_page(html: str) -> PageReader:
    reader = PageReader()
    reader.feed(html)
    return reader


# --- a citizen ----------------------------------------------------------------------------------


class WebCitizen:
    """A citizen in a browser: without JavaScript (forms, redirects) by default, or as the chat
    script does (``script=True``: JSON answers, fragments). Not a browser: the real one is in
    the browser tests; this one exercises every path over real HTTP, fast."""

    def __init__(
        self,
        chat: WebChat,
        *,
        script: bool = False,
        address: str | None = None,
        lang: str = "fr-FR,fr;q=0.9",
        session: ClientSession | None = None,
    ) -> None:
        self.chat = chat
        self.script = script
        self.headers = {"Accept-Language": lang}
        if address is not None:
            # the reverse proxy's header, believed from a loopback peer
            self.headers["X-Forwarded-For"] = address
        self.session = session or ClientSession(cookie_jar=CookieJar(unsafe=True))
        self.page = PageReader()
        #: Replies of the last turn (page: every bubble; script: the new ones).
        self.replies: list[str] = []
        self.status = 0
        self.last: ClientResponse | None = None
        self.json: dict[str, Any] = {}
        #: The last answer's body, as the browser received it (HTML, JSON).
        self.body = ""

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> WebCitizen:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def form(self) -> Form:
        return self.page.forms.get("reponse", Form())

    @property
    def menu(self) -> Form:
        return self.page.forms.get("menu", Form())

    @property
    def state(self) -> str:
        return self.form.fields.get("state", "")

    def buttons(self) -> list[str]:
        return [b.value for b in self.form.buttons if b.name == "choice"]

    async def open(self, query: str = "") -> PageReader:
        async with self.session.get(self.chat.url + query, headers=self.headers) as r:
            self.status = r.status
            self._read(await r.text())
        return self.page

    def _read(self, html: str) -> None:
        self.page = read_page(html)
        self.replies = self.page.replies

    async def post(self, data: dict[str, str], *, form: Form | None = None) -> int:
        """Send a form as the browser would; returns the final status."""
        headers = dict(self.headers)
        if self.script:
            headers["Accept"] = "application/json"
        async with self.session.post(
            self.chat.url + "message", data=data, headers=headers, allow_redirects=not self.script
        ) as r:
            self.last = r
            self.status = r.status
            body = self.body = await r.text()
            if self.script or r.content_type == "application/json":
                self.json = json.loads(body)
                self._apply_json(self.json)
            else:
                self._read(body)
        return self.status

    def _apply_json(self, body: dict[str, Any]) -> None:
        if body.get("status") != "ok":
            self.page.problem = str(body.get("problem", ""))
            return
        fragment = read_page(
            f'<ol>{body["messages"]}</ol><form id="reponse">{body["answer"]}</form>'
        )
        self.replies = fragment.replies
        self.page.replies.extend(fragment.replies)
        self.page.forms["reponse"] = fragment.forms["reponse"]
        menu = self.page.forms.setdefault("menu", Form())
        menu.fields.update(
            {"mid": str(body["menu_id"]), "v": str(body["version"]), "state": body["state"]}
        )
        self.page.problem = str(body.get("problem", ""))

    async def press(self, choice: str, **extra: str) -> int:
        """Press a button of the answer form, by its value (choice id) or its label."""
        form = self.form
        button = next(
            (b for b in form.buttons if b.name == "choice" and choice in (b.value, b.label)),
            None,
        )
        value = button.value if button is not None else choice
        return await self.post({**form.fields, "choice": value, **extra}, form=form)

    async def write(self, text: str, **extra: str) -> int:
        return await self.post({**self.form.fields, "text": text, "send": "1", **extra})

    async def command(self, name: str) -> int:
        return await self.post({**self.menu.fields, "command": name})

    def said(self, fragment: str) -> bool:
        return any(fragment in reply for reply in self.replies)


async def contribute(citizen: WebCitizen, *, query: str = "") -> None:
    """A whole contribution in French, from the welcome to the thank-you."""
    await citizen.open(query)
    await citizen.press("consent:yes")
    if citizen.state == "territory":
        await citizen.press("t:OISE")
    await citizen.press("th:1")
    await citizen.write(NEED_FR)
    await citizen.write(SOLUTION_FR)
    await citizen.write(LEVERS_FR)
    await citizen.press("p:-")
    assert citizen.state == "review", citizen.replies
    await citizen.press("send")
