"""The vendored French State design system (DSFR): pinned, complete (every file its CSS refers
to is there, every ``fr-icon-*`` the templates use is vendored), self-hosted, served with a
cache lifetime to anyone (no session), and re-vendored by ``moderation.dsfr_vendor``."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from moderation import dsfr_vendor
from moderation.app import create_app
from moderation.dsfr import CACHE_CONTROL, DSFR_DIR, DSFR_VERSION, add_dsfr_static
from moderation.web import CSP
from storage.db import session_factory
from storage.settings import Settings

ROOT = Path(__file__).parents[2]
#: Templates that may use DSFR icons: the console's, and the citizen web chat's.
TEMPLATE_DIRS = [ROOT / "moderation" / "templates", ROOT / "bot" / "web" / "templates"]
CSS_FILES = ["dsfr.min.css", "utility/icons/icons.min.css"]


def _banner_version(path: Path) -> str:
    m = re.search(r"DSFR v(\d+\.\d+\.\d+)", path.read_text(encoding="utf-8")[:300])
    assert m, path
    return m.group(1)


def test_the_pinned_version_is_the_vendored_one() -> None:
    for name in CSS_FILES:
        assert _banner_version(DSFR_DIR / name) == DSFR_VERSION, name
    assert f"**{DSFR_VERSION}**" in (DSFR_DIR / "README.md").read_text()
    assert "Etalab" in (DSFR_DIR / "LICENSE.md").read_text()


def test_every_file_the_css_refers_to_is_vendored_and_nothing_is_remote() -> None:
    for name in CSS_FILES:
        css = (DSFR_DIR / name).read_text(encoding="utf-8")
        refs = dsfr_vendor.css_references(css, name)
        assert refs, name
        for ref in refs:
            assert (DSFR_DIR / ref).is_file(), (name, ref)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), name
        assert "sourceMappingURL" not in css
    fonts = {p.name for p in (DSFR_DIR / "fonts").iterdir()}
    assert {"Marianne-Regular.woff2", "Marianne-Bold.woff2", "Spectral-Regular.woff2"} <= fonts
    for js in ("dsfr.module.min.js", "dsfr.nomodule.min.js"):
        text = (DSFR_DIR / js).read_text(encoding="utf-8")
        assert "sourceMappingURL" not in text
        assert "https://cdn" not in text


def test_only_what_is_used_is_vendored() -> None:
    files = [p.relative_to(DSFR_DIR).as_posix() for p in DSFR_DIR.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith(".map")]
    referenced = {
        ref
        for name in CSS_FILES
        for ref in dsfr_vendor.css_references((DSFR_DIR / name).read_text(encoding="utf-8"), name)
    }
    extra = (
        set(files)
        - referenced
        - set(dsfr_vendor.ENTRY_FILES)
        - {dsfr_vendor.UTILITY_CSS, "LICENSE.md", "README.md"}
    )
    assert extra == set()
    size = sum((DSFR_DIR / f).stat().st_size for f in files)
    assert size < 3_500_000, size  # (about 2.7 MB: the CSS, the JS and the fonts)


def test_every_icon_the_templates_use_is_vendored() -> None:
    css = "".join((DSFR_DIR / name).read_text(encoding="utf-8") for name in CSS_FILES)
    used: dict[str, str] = {}
    for folder in TEMPLATE_DIRS:
        for template in folder.rglob("*.html") if folder.exists() else ():
            for icon in re.findall(r"\bfr-icon-([a-z0-9][a-z0-9-]*)", template.read_text()):
                used.setdefault(icon, template.name)
    assert used  # the console uses some
    missing = {i: t for i, t in used.items() if f".fr-icon-{i}:" not in css}
    assert missing == {}, "add them to UTILITY_ICONS in moderation/dsfr_vendor.py and rerun it"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_served_to_anyone_with_a_cache_lifetime(
    db_settings: Settings, engine: AsyncEngine
) -> None:
    app = create_app(db_settings, session_factory(engine))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(f"/dsfr/dsfr.min.css?v={DSFR_VERSION}", allow_redirects=False)
        assert resp.status == 200  # no session needed (the login page uses it)
        assert resp.content_type == "text/css"
        assert resp.headers["Cache-Control"] == CACHE_CONTROL
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        font = await client.get("/dsfr/fonts/Marianne-Regular.woff2")
        assert font.status == 200 and font.content_type == "font/woff2"
        icon = await client.get("/dsfr/icons/system/close-line.svg")
        assert icon.status == 200 and icon.content_type == "image/svg+xml"
        for path in ("/dsfr/", "/dsfr/fonts/", "/dsfr/../app.py", "/dsfr/%2e%2e/dsfr.py"):
            resp = await client.get(URL(path, encoded=True), allow_redirects=False)
            # no listing; nothing outside (a path normalised out of /dsfr/ needs a session)
            assert resp.status in (303, 403, 404), path
            assert "import" not in await resp.text()
        # the pages themselves are not cached
        login = await client.get("/login")
        assert login.headers["Cache-Control"] == "no-store"
        page = await login.text()
        assert f'href="/dsfr/dsfr.min.css?v={DSFR_VERSION}"' in page


async def test_the_web_chat_can_serve_it_under_its_own_prefix(
    aiohttp_free_app: web.Application,
) -> None:
    add_dsfr_static(aiohttp_free_app, prefix="/assets/dsfr/")
    async with TestClient(TestServer(aiohttp_free_app)) as client:
        resp = await client.get("/assets/dsfr/utility/icons/icons.min.css")
        assert resp.status == 200 and resp.headers["Cache-Control"] == CACHE_CONTROL
        assert (await client.get("/dsfr/dsfr.min.css")).status == 404


@pytest.fixture
def aiohttp_free_app() -> web.Application:
    """A bare application (as the web chat's), nothing of the console."""
    return web.Application()


# --- the vendoring script -------------------------------------------------------------------

FAKE_CSS = (
    "/*!\n * DSFR v9.9.9 | SPDX-License-Identifier: Etalab-2.0\n */"
    ".fr-a{background:url(icons/system/a.svg)}"
    "@font-face{src:url(fonts/M.woff2) format('woff2'),url(\"fonts/M.woff\") format('woff')}"
    '.fr-b{background:url("data:image/svg+xml;charset=utf8,<svg/>")}'
    "\n/*# sourceMappingURL=dsfr.min.css.map */"
)
FAKE_ICONS = (
    "/*!\n * DSFR v9.9.9 */"
    ".fr-icon-x-line:after,.fr-icon-x-line:before{-webkit-mask-image:url(../../icons/system/x-line.svg);"
    "mask-image:url(../../icons/system/x-line.svg)}"
    ".fr-icon-y-line:after,.fr-icon-y-line:before{-webkit-mask-image:url(../../icons/y/y-line.svg);"
    "mask-image:url(../../icons/y/y-line.svg)}"
    "@media screen and (-ms-high-contrast:active){.fr-icon-x-line:after,.fr-icon-x-line:before"
    "{background-image:url(../../icons/system/x-line.svg)}}"
)


def _fake_package(path: Path) -> Path:
    files = {
        "package.json": json.dumps({"name": "@gouvfr/dsfr", "version": "9.9.9"}),
        "LICENSE.md": "Licence Etalab 2.0",
        "dist/dsfr.min.css": FAKE_CSS,
        "dist/utility/icons/icons.min.css": FAKE_ICONS,
        "dist/icons/system/a.svg": "<svg/>",
        "dist/icons/system/x-line.svg": "<svg/>",
        "dist/icons/y/y-line.svg": "<svg/>",
        "dist/icons/system/unused.svg": "<svg/>",
        "dist/fonts/M.woff2": "w2",
        "dist/fonts/M.woff": "w1",
        "dist/fonts/Unused.woff2": "no",
    }
    files.update({f"dist/{n}": "x" for n in dsfr_vendor.ENTRY_FILES if n.startswith("favicon/")})
    files["dist/dsfr.module.min.js"] = "let a=1;\n//# sourceMappingURL=dsfr.module.min.js.map"
    files["dist/dsfr.nomodule.min.js"] = "var a=1;"
    tgz = path / "gouvfr-dsfr-9.9.9.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("package/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return tgz


def test_the_script_vendors_only_what_is_used(tmp_path: Path) -> None:
    target = tmp_path / "dsfr"
    target.mkdir()
    (target / "README.md").write_text("kept")
    (target / "stale.css").write_text("removed")
    version, written = dsfr_vendor.vendor(_fake_package(tmp_path), target, icons=("x-line",))
    assert version == "9.9.9"
    assert (target / "README.md").read_text() == "kept"
    assert not (target / "stale.css").exists()
    assert "icons/system/a.svg" in written and "fonts/M.woff" in written
    assert "icons/system/x-line.svg" in written and "icons/y/y-line.svg" not in written
    assert not (target / "icons/system/unused.svg").exists()
    assert not (target / "fonts/Unused.woff2").exists()
    icons = (target / "utility/icons/icons.min.css").read_text()
    assert ".fr-icon-x-line:after" in icons and "y-line" not in icons
    assert "background-image" not in icons  # the IE copies are left out
    assert "sourceMappingURL" not in (target / "dsfr.min.css").read_text()
    assert (target / "dsfr.module.min.js").read_text().strip() == "let a=1;"
    with pytest.raises(dsfr_vendor.VendorError, match="no such DSFR icon: nope"):
        dsfr_vendor.vendor(_fake_package(tmp_path), target, icons=("nope",))
