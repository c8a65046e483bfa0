"""The French State design system (DSFR), vendored at a pinned version and served by the app.

Shared by the staff console and the citizen web chat: both call ``add_dsfr_static(app)`` and
link ``/dsfr/dsfr.min.css``, ``/dsfr/utility/icons/icons.min.css`` and, for the components that
need it, ``/dsfr/dsfr.module.min.js`` (``type="module"``) and ``/dsfr/dsfr.nomodule.min.js``
(``nomodule``). Everything is self-hosted (no CDN, no third-party font), so a
``default-src 'self'`` Content-Security-Policy holds. ``moderation/static/dsfr/README.md``
says what is vendored and how to update it (``python -m moderation.dsfr_vendor``).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

#: The vendored ``@gouvfr/dsfr`` release (rewritten by ``python -m moderation.dsfr_vendor``).
DSFR_VERSION = "1.15.3"
#: The vendored files (``dist/`` layout of the npm package, only what is used).
DSFR_DIR = Path(__file__).parent / "static" / "dsfr"
#: A week: the file names do not carry the version, so not "immutable"; browsers revalidate
#: (ETag / Last-Modified) after that. Pages add ``?v=DSFR_VERSION`` to the CSS and JS links.
CACHE_CONTROL = "public, max-age=604800"
#: Types aiohttp's own table lacks (it would say application/octet-stream).
CONTENT_TYPES = {
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".webmanifest": "application/manifest+json",
}


def add_dsfr_static(app: web.Application, prefix: str = "/dsfr") -> None:
    """Serve the vendored DSFR files under ``prefix`` (no directory listing, no symlinks)."""
    prefix = "/" + prefix.strip("/")
    app.router.add_static(prefix, DSFR_DIR, name="dsfr", follow_symlinks=False)

    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith(prefix + "/") or response.status not in (200, 304):
            return
        response.headers["Cache-Control"] = CACHE_CONTROL
        suffix = Path(request.path).suffix
        if suffix in CONTENT_TYPES and response.status == 200:
            response.content_type = CONTENT_TYPES[suffix]

    app.on_response_prepare.append(_headers)
