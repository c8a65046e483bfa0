"""Printable A4 posters (SVG) with QR codes to the web chat and the Telegram bot.

An agency puts them up in pharmacies and town halls: a citizen scans a code with their phone and
lands in the web chat with the territory already chosen (``?territoire=oise``), or in the
Telegram bot (``https://t.me/<bot>?start=oise``). Each link is also printed in clear under its
code, for those who type it.

Pure functions of plain values: no database, no settings, no I/O (``bot/commands/poster.py``
reads those). The wording is plain, polite French in large type and high contrast, written
with the easy-to-read rules (one idea per sentence, everyday words), for older people and
people who read with difficulty.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import segno

from dialogs import places, validation
from dialogs.model import Territory

__all__ = [
    "Poster",
    "PosterError",
    "check_bot_username",
    "check_public_url",
    "file_name",
    "find_territory",
    "render_svg",
    "shown_link",
    "telegram_link",
    "web_link",
]

#: Telegram usernames: 5 to 32 characters, letters, digits and underscores, not starting with a
#: digit or an underscore (https://core.telegram.org/method/account.checkUsername).
_BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}", flags=re.ASCII)
#: What a deep link's ``start`` parameter may hold (https://core.telegram.org/bots/features).
_START_PARAM = re.compile(r"[A-Za-z0-9_-]{1,64}", flags=re.ASCII)
#: Characters XML 1.0 does not allow at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# A4 portrait, in millimetres (the SVG's user unit).
WIDTH = 210.0
HEIGHT = 297.0
MARGIN = 12.0
BLUE = "#000091"  # the French State's "bleu France": 15.9:1 with white
INK = "#161616"
PAPER = "#ffffff"
GREY = "#eeeeee"
FONT = "Marianne, Arial, 'Liberation Sans', Helvetica, sans-serif"
#: Average advance of a character, in ems, a little generous so that text fits with wide
#: fallback fonts (DejaVu Sans) too.
_EM_BOLD = 0.58
_EM_REGULAR = 0.52
#: A QR code's quiet zone, in modules (ISO/IEC 18004 asks for 4).
QUIET_ZONE = 4


class PosterError(ValueError):
    """A value the operator gave cannot go on a poster (the message says which and why)."""


@dataclass(frozen=True)
class Poster:
    """What one poster shows. ``telegram_url`` None: the web chat's code only."""

    campaign_name: str
    territory_name: str
    web_url: str
    telegram_url: str | None = None
    #: Last day of the campaign (printed: "Vous pouvez participer jusqu'au ...").
    closes_on: date | None = None


# --- links ------------------------------------------------------------------------------------


def check_public_url(url: str) -> str:
    """``url`` if it is an absolute http(s) address with a host (surrounding spaces removed),
    else :class:`PosterError`."""
    url = url.strip()
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise PosterError(f"{url!r} is not an address (empty, or with spaces)")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number (or out of range)
    except ValueError as exc:
        raise PosterError(f"{url!r} is not a valid address ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise PosterError(f"{url!r} is not an http:// or https:// address")
    if not parts.hostname:
        raise PosterError(f"{url!r} has no host name")
    if parts.username is not None or parts.password is not None:
        raise PosterError(f"{url!r} carries a user name or password: not on a poster")
    return url


def web_link(base_url: str, territory_code: str) -> str:
    """The web chat's address with the territory preselected: ``base?territoire=oise``. A query
    the base already has is kept (its own ``territoire`` replaced); a fragment stays last."""
    parts = urlsplit(check_public_url(base_url))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "territoire"]
    query.append(("territoire", territory_code.lower()))
    return urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            parts.path or "/",
            urlencode(query, quote_via=quote),
            parts.fragment,
        )
    )


def check_bot_username(username: str) -> str:
    """The bot's username without a leading ``@``, or :class:`PosterError`."""
    name = username.strip().removeprefix("@")
    if not _BOT_USERNAME.fullmatch(name):
        raise PosterError(
            f"{username!r} is not a Telegram username (5 to 32 letters, digits or _, without t.me/)"
        )
    return name


def telegram_link(username: str, territory_code: str) -> str:
    """The bot's deep link that preselects the territory: ``https://t.me/<bot>?start=oise``."""
    start = territory_code.lower()
    if not _START_PARAM.fullmatch(start):
        raise PosterError(f"territory code {territory_code!r} cannot go in a Telegram link")
    return f"https://t.me/{check_bot_username(username)}?start={start}"


def shown_link(url: str) -> str:
    """The link as printed for people who type it: ``https://`` left out (browsers add it)."""
    return url.removeprefix("https://")


def find_territory(territories: Sequence[Territory], query: str) -> Territory | None:
    """The territory named by its code or its name, as the chat accepts them: case, accents,
    punctuation and a leading article ignored (``oise``, ``L'Oise``, ``metropole flandres``,
    ``Métropole-Flandres``)."""
    wanted = {fold(query) for fold in (places.fold, validation.fold)} - {""}
    if not wanted:
        return None
    for territory in territories:
        for text in (territory.code, territory.name):
            if wanted & {places.fold(text), validation.fold(text)}:
                return territory
    return None


def file_name(campaign_code: str, territory_code: str) -> str:
    """``HDF-2022_OISE_affiche.svg`` (codes are ``[A-Z0-9-]``: safe in a file name)."""
    return f"{campaign_code}_{territory_code}_affiche.svg"


# --- text layout ------------------------------------------------------------------------------


def _xml(text: str) -> str:
    """Text or attribute value made safe for XML: characters XML forbids removed, markup
    characters (``< > & " '``) escaped."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


def _one_line(text: str) -> str:
    return " ".join(_NOT_XML.sub("", text).split())


def _fit(
    text: str, width: float, largest: float, smallest: float, max_lines: int, em: float
) -> tuple[float, list[str]]:
    """A font size (mm, by steps of 0.5) and the lines of ``text`` in ``width``: one line if it
    fits at 80 % of ``largest``, else the largest size at which it wraps into at most
    ``max_lines`` lines (at ``smallest``, what does not fit is cut with an ellipsis)."""
    text = _one_line(text)
    size = largest
    while size >= max(smallest, largest * 0.8):  # one line, a little smaller, reads best
        if len(text) <= int(width / (em * size)):
            return size, [text]
        size -= 0.5
    size = largest
    while True:
        per_line = max(1, int(width / (em * size)))
        lines = _wrap(text, per_line)
        if len(lines) <= max_lines:
            while per_line > 1 and len(_wrap(text, per_line - 1)) == len(lines):
                per_line -= 1  # balanced lines: no long first line over a short last one
            return size, _wrap(text, per_line) or [""]
        if size - 0.5 < smallest:
            kept = lines[:max_lines]
            kept[-1] = kept[-1][: max(0, per_line - 1)].rstrip() + "…"
            return size, kept
        size -= 0.5


def _wrap(text: str, per_line: int) -> list[str]:
    return textwrap.wrap(text, per_line, break_long_words=True, break_on_hyphens=False)


def _link_lines(link: str, per_line: int) -> list[str]:
    """A link cut where a reader expects it: after ``/``, before ``?`` and ``&``; a piece longer
    than a line is cut anywhere."""
    pieces = [p for p in re.split(r"(?<=/)|(?=[?&])", link) if p]
    lines: list[str] = []
    current = ""
    for piece in pieces:
        while len(piece) > per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(piece[:per_line])
            piece = piece[per_line:]
        if len(current) + len(piece) > per_line:
            lines.append(current)
            current = piece
        else:
            current += piece
    if current:
        lines.append(current)
    return lines


def _fit_link(link: str, width: float, largest: float, smallest: float) -> tuple[float, list[str]]:
    size = largest
    while True:
        lines = _link_lines(link, max(8, int(width / (_EM_BOLD * size))))
        if len(lines) <= 2 or size - 0.5 < smallest:
            return size, lines
        size -= 0.5


def _text(
    lines: Sequence[str],
    *,
    x: float,
    y: float,
    size: float,
    leading: float = 1.25,
    bold: bool = False,
    fill: str = INK,
    anchor: str = "middle",
) -> tuple[str, float]:
    """``<text>`` elements, the first baseline at ``y + size``; returns them and the y below."""
    out = []
    weight = ' font-weight="700"' if bold else ""
    for i, line in enumerate(lines):
        baseline = y + size + i * size * leading
        out.append(
            f'<text x="{x:.2f}" y="{baseline:.2f}" font-size="{size:.2f}"{weight} '
            f'fill="{fill}" text-anchor="{anchor}">{_xml(line)}</text>'
        )
    return "\n".join(out), y + size + (len(lines) - 1) * size * leading + size * 0.35


def _french_date(day: date) -> str:
    """``31 décembre 2022``, ``1er mars 2023``."""
    from babel.dates import format_date

    text = format_date(day, "d MMMM y", locale="fr")
    return "1er" + text[1:] if day.day == 1 else text


# --- QR codes ---------------------------------------------------------------------------------


def _qr(url: str, *, x: float, y: float, size: float, ident: str, label: str) -> str:
    """A QR code of ``url`` as one path, its quiet zone included in the ``size`` mm square,
    inside a link (clickable when the poster is shown on a screen)."""
    code = segno.make_qr(url, error="q")
    rows = [list(row) for row in code.matrix]
    modules = len(rows)
    unit = size / (modules + 2 * QUIET_ZONE)
    runs = []
    for r, row in enumerate(rows):
        c = 0
        while c < modules:
            if row[c]:
                start = c
                while c < modules and row[c]:
                    c += 1
                runs.append(f"M{start + QUIET_ZONE} {r + QUIET_ZONE}h{c - start}v1h-{c - start}z")
            else:
                c += 1
    return (
        f'<a href="{_xml(url)}">'
        f'<g id="{ident}" role="img" aria-label="{_xml(label)}">'
        f'<rect x="{x:.2f}" y="{y:.2f}" width="{size:.2f}" height="{size:.2f}" fill="{PAPER}"/>'
        f'<path transform="translate({x:.2f} {y:.2f}) scale({unit:.5f})" fill="#000000" '
        f'shape-rendering="crispEdges" d="{"".join(runs)}"/>'
        "</g></a>"
    )


LABEL_SIZE = 7.5
LINK_LARGEST = 6.0
LINK_SMALLEST = 4.0


def _code_column(
    *, label: str, url: str, ident: str, cx: float, y: float, qr_size: float, width: float
) -> str:
    """Label above, QR code, link in clear below, centred on ``cx``."""
    parts = []
    label_svg, y = _text([label], x=cx, y=y, size=LABEL_SIZE, bold=True, fill=BLUE)
    parts.append(label_svg)
    y += 2.0
    parts.append(
        _qr(url, x=cx - qr_size / 2, y=y, size=qr_size, ident=ident, label=f"{label} : {url}")
    )
    y += qr_size + 2.0
    size, lines = _fit_link(shown_link(url), width, LINK_LARGEST, LINK_SMALLEST)
    link_svg, _ = _text(lines, x=cx, y=y, size=size, bold=True, leading=1.2)
    parts.append(f'<g class="link">{link_svg}</g>')
    return "\n".join(parts)


def _column_height(url: str, width: float, qr_size: float) -> float:
    """Height of :func:`_code_column` (as laid out there)."""
    size, lines = _fit_link(shown_link(url), width, LINK_LARGEST, LINK_SMALLEST)
    label = LABEL_SIZE * 1.35
    link = size * 1.35 + (len(lines) - 1) * size * 1.2
    return label + 2.0 + qr_size + 2.0 + link


# --- the poster -------------------------------------------------------------------------------


def render_svg(poster: Poster) -> str:
    """The A4 poster as a standalone SVG document (UTF-8, well-formed XML)."""
    inner = WIDTH - 2 * MARGIN
    centre = WIDTH / 2
    both = poster.telegram_url is not None
    body: list[str] = []

    # Band: the campaign's name, white on blue.
    size, lines = _fit(poster.campaign_name, inner, 9.0, 6.0, 2, _EM_BOLD)
    pad = 5.0
    band_h = 2 * pad + size * 1.3 + (len(lines) - 1) * size * 1.2
    body.append(f'<rect x="0" y="0" width="{WIDTH:g}" height="{band_h:.2f}" fill="{BLUE}"/>')
    svg, _ = _text(lines, x=centre, y=pad, size=size, bold=True, fill=PAPER, leading=1.2)
    body.append(f'<g id="campaign">{svg}</g>')
    y = band_h + 6.0

    # Call to action.
    svg, y = _text(["Votre santé, votre avis"], x=centre, y=y, size=16.0, bold=True, fill=BLUE)
    body.append(svg)
    y += 3.0
    size, lines = _fit(
        "Donnez votre avis sur l’accès aux soins près de chez vous.",
        inner,
        9.0,
        7.0,
        2,
        _EM_REGULAR,
    )
    svg, y = _text(lines, x=centre, y=y, size=size)
    body.append(svg)
    y += 4.0

    # The territory, framed.
    size, lines = _fit(f"Territoire : {poster.territory_name}", inner - 8, 10.0, 6.0, 2, _EM_BOLD)
    box_h = 2 * 3.5 + size * 1.3 + (len(lines) - 1) * size * 1.2
    body.append(
        f'<rect x="{MARGIN:.2f}" y="{y:.2f}" width="{inner:.2f}" height="{box_h:.2f}" rx="3" '
        f'fill="{PAPER}" stroke="{BLUE}" stroke-width="1.2"/>'
    )
    svg, _ = _text(lines, x=centre, y=y + 3.5, size=size, bold=True, leading=1.2)
    body.append(f'<g id="territory">{svg}</g>')
    y += box_h + 5.0

    # How to take part.
    scan = (
        "Scannez un des codes avec l’appareil photo de votre téléphone."
        if both
        else "Scannez le code avec l’appareil photo de votre téléphone."
    )
    size, lines = _fit(scan, inner, 7.5, 6.0, 2, _EM_BOLD)
    svg, y = _text(lines, x=centre, y=y, size=size, bold=True)
    body.append(svg)
    y += 5.0

    # Footer (laid out first: the codes take the room left between).
    footer = [
        f"Vous pouvez aussi taper l’adresse écrite sous {'les codes' if both else 'le code'}.",
        "C’est gratuit. Vous n’avez pas besoin de créer un compte.",
    ]
    if poster.closes_on is not None:
        footer.append(f"Vous pouvez participer jusqu’au {_french_date(poster.closes_on)}.")
    foot_size = 6.0
    foot_h = 2 * 4.0 + foot_size * 1.3 + (len(footer) - 1) * foot_size * 1.35
    foot_y = HEIGHT - foot_h

    # The codes, each with its link in clear, as large as the room allows.
    columns: list[tuple[str, str, str]] = [("Sur internet", poster.web_url, "qr-web")]
    if poster.telegram_url is not None:
        columns.append(("Sur Telegram", poster.telegram_url, "qr-telegram"))
    column = inner / len(columns)
    # (the size includes the white quiet zone, 4 modules on each side)
    qr_size = min(column - 4.0, 105.0)
    for _, url, _ in columns:
        overflow = y + _column_height(url, column - 6, qr_size) - (foot_y - 4.0)
        qr_size = max(45.0, qr_size - max(0.0, overflow))
    for i, (label, url, ident) in enumerate(columns):
        body.append(
            _code_column(
                label=label,
                url=url,
                ident=ident,
                cx=MARGIN + column * (i + 0.5),
                y=y,
                qr_size=qr_size,
                width=column - 6,
            )
        )

    body.append(
        f'<rect x="0" y="{foot_y:.2f}" width="{WIDTH:g}" height="{foot_h:.2f}" fill="{GREY}"/>'
    )
    svg, _ = _text(footer, x=centre, y=foot_y + 4.0, size=foot_size, leading=1.35)
    body.append(svg)

    title = f"Affiche – {_one_line(poster.campaign_name)} – {_one_line(poster.territory_name)}"
    links = " ; ".join(url for _, url, _ in columns)
    desc = f"Votre santé, votre avis. Participez en scannant le code : {links}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xml:lang="fr" lang="fr" '
        f'width="{WIDTH:g}mm" height="{HEIGHT:g}mm" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" '
        f'font-family="{_xml(FONT)}">\n'
        f"<title>{_xml(title)}</title>\n"
        f"<desc>{_xml(desc)}</desc>\n"
        f'<rect width="{WIDTH:g}" height="{HEIGHT:g}" fill="{PAPER}"/>\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )
