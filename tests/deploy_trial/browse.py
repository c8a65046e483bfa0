"""The deployment trial's browser checks (run.sh), in Debian's Chromium through nginx and TLS:
a citizen's whole contribution with JavaScript and another without, each cookie Secure,
HttpOnly and SameSite=Lax, then the admin signs in to the console on its internal port and
finds both references in the queue.

    python tests/deploy_trial/browse.py STAFF_PASSWORD
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.web.test_web_browser import PHONE, Tab, contribute, size

HOSTS = ("contribuer.ars.example.fr", "console.bot.example.fr", "bot.example.fr")
RULES = ", ".join(f"MAP {host} 127.0.0.1" for host in HOSTS)


async def check(password: str) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=[f"--host-resolver-rules={RULES}"]
        )
        references = []
        for js in (True, False):
            context = await browser.new_context(
                viewport=size(PHONE),
                locale="fr-FR",
                java_script_enabled=js,
                ignore_https_errors=True,
            )
            tab = Tab(await context.new_page(), js)
            references.append(await contribute(tab, "https://contribuer.ars.example.fr/"))
            cookies = await context.cookies()
            assert cookies and all(
                c["secure"] and c["httpOnly"] and c["sameSite"] == "Lax" for c in cookies
            ), cookies
            print("citizen", "with" if js else "without", "JavaScript:", references[-1])
            await context.close()
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await page.goto("https://console.bot.example.fr:8443/login")
        await page.fill("input[name=email]", "admin@ars.example.fr")
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        await page.goto("https://console.bot.example.fr:8443/contributions")
        body = await page.inner_text("body")
        assert all(reference in body for reference in references), body[:500]
        print("console (port 8443): both contributions in the queue")
        await browser.close()


if __name__ == "__main__":
    asyncio.run(check(sys.argv[1]))
