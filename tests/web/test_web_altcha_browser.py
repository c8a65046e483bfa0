"""The vendored ALTCHA widget in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), on a page served with the web chat's strict Content-Security-Policy: it loads
without a violation, fetches a challenge from our endpoint, solves it in its web workers, puts
the solution in the form, and the server accepts it once."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.web.proof_of_work import FIELD, ProofOfWork
from storage.ratelimit import MemoryRateLimiter
from storage.settings import Settings

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STATIC = Path(__file__).parents[2] / "bot" / "web" / "static" / "altcha"
README = STATIC / "README.md"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM} (install Debian's chromium package; .ci/run does)",
    ),
]


def documented_csp() -> str:
    """The policy the README tells the web chat to send (a test keeps the two in step)."""
    match = re.search(r"^Content-Security-Policy: (.+)$", README.read_text(), re.MULTILINE)
    assert match, "README.md states the Content-Security-Policy on a line of its own"
    return match.group(1).strip()


PAGE = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>Contribution</title>
<link rel="stylesheet" href="/static/altcha/altcha.css">
<script type="module" src="/static/altcha/altcha-setup.js"></script>
</head>
<body>
<form method="post" action="/send">
  <altcha-widget challenge="/altcha/challenge" auto="onsubmit"></altcha-widget>
  <button type="submit">Envoyer</button>
</form>
</body>
</html>
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[TestServer, list[str]]]:
    settings = Settings(
        secret_key="test-secret-not-for-production", secret_file=tmp_path / "secret.key"
    )
    pow = ProofOfWork(settings, MemoryRateLimiter(b"k" * 32))
    csp = documented_csp()
    received: list[str] = []

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            text=PAGE, content_type="text/html", headers={"Content-Security-Policy": csp}
        )

    async def challenge(_request: web.Request) -> web.Response:
        return web.json_response(pow.challenge(), headers={"Cache-Control": "no-store"})

    async def send(request: web.Request) -> web.Response:
        form = await request.post()
        proof = form.get(FIELD)
        received.append(proof if isinstance(proof, str) else "")
        ok = await pow.verify(proof if isinstance(proof, str) else None)
        return web.Response(
            text=f"<!doctype html><title>r</title><p id=result>{'accepted' if ok else 'refused'}",
            content_type="text/html",
            headers={"Content-Security-Policy": csp},
        )

    async def no_icon(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/altcha/challenge", challenge)
    app.router.add_post("/send", send)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_static("/static/altcha", STATIC)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv, received
    await srv.close()


async def test_the_widget_solves_under_the_strict_csp(
    server: tuple[TestServer, list[str]],
) -> None:
    from playwright.async_api import async_playwright

    srv, received = server
    base = str(srv.make_url("/"))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            await page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e =>"
                " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
            )
            await page.goto(base)
            checkbox = page.locator("altcha-widget input[type=checkbox]")
            await checkbox.wait_for()
            # French strings (lang="fr"), and the external stylesheet is applied
            assert "Je ne suis pas un robot" in await page.locator("altcha-widget").inner_text()
            radius = await page.evaluate(
                "getComputedStyle(document.documentElement)"
                ".getPropertyValue('--altcha-border-radius').trim()"
            )
            assert radius == "6px"

            started = time.perf_counter()
            async with page.expect_navigation():
                await page.get_by_role("button", name="Envoyer").click()
            took = time.perf_counter() - started
            assert await page.locator("#result").inner_text() == "accepted", problems
            assert len(received) == 1 and received[0]
            solution = json.loads(base64.b64decode(received[0]))["solution"]
            print(
                f"\nthe widget found counter {solution['counter']:,} in {solution['time']:.0f} ms;"
                f" the form was sent {took:.2f} s after the click"
            )

            # the same proof sent again is refused
            replay = await page.request.post(base + "send", form={FIELD: received[0]})
            assert "refused" in await replay.text()
            assert problems == []
        finally:
            await browser.close()
