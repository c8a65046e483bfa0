"""``cnrbot console``: a real process on its own listener, serving the login page."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import aiohttp

from storage.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_console_command_serves_the_login_page(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        "CNR_DATABASE_URL": sqlite_settings.database_url,
        "CNR_SECRET_KEY": "test-secret-not-for-production",
        "PATH": "/usr/bin:/bin",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "console",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(Path(__file__).parents[2]),
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert f"http://127.0.0.1:{port}/" in line.decode()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/login") as resp:
                assert resp.status == 200
                assert "Connexion" in await resp.text()
                assert resp.headers["X-Frame-Options"] == "DENY"
            async with http.get(
                f"http://127.0.0.1:{port}/contributions", allow_redirects=False
            ) as resp:
                assert resp.status == 303
    finally:
        if proc.returncode is None:
            proc.terminate()
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    assert code == 0  # SIGTERM: listener closed, engine disposed, clean exit
