"""The tests' fake Telegram Bot API on 0.0.0.0:PORT, for the deployment trial (run.sh): the
containers' webhook workers register their webhook and send their replies to it. Every second
it writes the number of calls per method and the registered webhook to a JSON file.

    python tests/deploy_trial/fake_bot_api.py PORT TOKEN OUT.json
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fakebotapi import FakeBotAPI


async def serve(port: int, token: str, out: Path) -> None:
    api = FakeBotAPI(token)
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api._dispatch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    while True:
        state = {"calls": dict(api.calls), "webhook": (api.webhook or {}).get("url")}
        await asyncio.to_thread(out.write_text, json.dumps(state), encoding="utf-8")
        await asyncio.sleep(1)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
