"""``cnrbot poster``: printable A4 posters (SVG) with QR codes.

The SVG is parsed as XML, hostile names stay text, and the QR codes are rendered by the real
Chromium (Debian's, driven by Playwright) and decoded by OpenCV's QR decoder: what a phone reads
is what the poster promises."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from bot.poster import (
    Poster,
    PosterError,
    check_bot_username,
    check_public_url,
    find_territory,
    render_svg,
    shown_link,
    telegram_link,
    web_link,
)
from storage.campaign_file import CAMPAIGNS_DIR, read_campaign_file
from storage.settings import Settings

SVG = "{http://www.w3.org/2000/svg}"
SHIPPED = CAMPAIGNS_DIR / "hauts-de-france-2022.toml"
HDF_CODES = [
    "ARTOIS-DOUAISIS",
    "OISE",
    "SOMME-LITTORAL-SUD",
    "HAINAUT",
    "METROPOLE-FLANDRES",
    "AISNE-HAUTE-SOMME",
    "LITTORAL-NORD",
]
BASE = "https://contribuer.ars.example.fr/"
HOSTILE_CAMPAIGN = "Santé <script>alert(\"x\")</script> & 'Cie' ]]> <!--"
HOSTILE_TERRITORY = 'Oise <b>&amp; "Sud"</b>'
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


def parse(text: str) -> ET.Element:
    """The SVG parsed as XML (raises on anything not well-formed)."""
    return ET.fromstring(text.encode("utf-8"))


def texts(root: ET.Element, group: str | None = None) -> list[str]:
    """The ``<text>`` lines of the element ``id=group`` (or of the whole poster)."""
    scope = root if group is None else root.find(f".//*[@id='{group}']")
    assert scope is not None, group
    return ["".join(t.itertext()) for t in scope.iter(f"{SVG}text")]


def link_lines(root: ET.Element) -> list[str]:
    """The link printed under each code, lines joined."""
    return [
        "".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "link"
    ]


# --- links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "code", "expected"),
    [
        (BASE, "OISE", "https://contribuer.ars.example.fr/?territoire=oise"),
        (
            "https://contribuer.ars.example.fr",
            "OISE",
            "https://contribuer.ars.example.fr/?territoire=oise",
        ),
        (
            "https://www.ars.example.fr/cnr/chat?src=affiche#haut",
            "LITTORAL-NORD",
            "https://www.ars.example.fr/cnr/chat?src=affiche&territoire=littoral-nord#haut",
        ),
        (
            "http://localhost:8090/?territoire=hainaut",
            "OISE",
            "http://localhost:8090/?territoire=oise",
        ),
    ],
)
def test_web_link_preselects_the_territory(base: str, code: str, expected: str) -> None:
    assert web_link(base, code) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "contribuer.ars.example.fr",
        "ftp://contribuer.ars.example.fr/",
        "javascript:alert(1)",
        "https://",
        "https:///chat",
        "https://agent:secret@contribuer.ars.example.fr/",
        "https://contribuer ars.example.fr/",
        "https://contribuer.ars.example.fr:port/",
        "https://contribuer.ars.example.fr/\n",
    ],
)
def test_only_http_addresses_with_a_host_go_on_a_poster(bad: str) -> None:
    if bad.endswith("\n"):
        assert check_public_url(bad) == bad.strip()  # surrounding spaces are trimmed
        return
    with pytest.raises(PosterError):
        check_public_url(bad)


def test_telegram_deep_link() -> None:
    assert telegram_link("CnrSanteHdfBot", "METROPOLE-FLANDRES") == (
        "https://t.me/CnrSanteHdfBot?start=metropole-flandres"
    )
    assert check_bot_username("@CnrSanteHdfBot") == "CnrSanteHdfBot"
    for bad in ("t.me/CnrSanteHdfBot", "bot", "1CnrBot", "Cnr Sante Bot", "x" * 33):
        with pytest.raises(PosterError):
            check_bot_username(bad)


def test_links_are_printed_without_the_scheme_people_need_not_type() -> None:
    assert shown_link("https://t.me/CnrBot?start=oise") == "t.me/CnrBot?start=oise"
    assert shown_link("http://localhost:8090/") == "http://localhost:8090/"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("OISE", "OISE"),
        ("oise", "OISE"),
        ("L'Oise", "OISE"),
        ("  Oise ", "OISE"),
        ("métropole-flandres", "METROPOLE-FLANDRES"),
        ("Metropole Flandres", "METROPOLE-FLANDRES"),
        ("METROPOLE-FLANDRES", "METROPOLE-FLANDRES"),
        ("aisne haute somme", "AISNE-HAUTE-SOMME"),
        ("Somme Littoral Sud", "SOMME-LITTORAL-SUD"),
        ("somme", None),
        ("Paris", None),
        ("", None),
        ("-", None),
    ],
)
def test_territory_by_code_or_name_as_the_chat_accepts(query: str, code: str | None) -> None:
    view = read_campaign_file(SHIPPED).to_view()
    found = find_territory(view.territories, query)
    assert (found.code if found else None) == code


# --- the SVG ----------------------------------------------------------------------------------


def test_svg_is_well_formed_a4_with_names_and_links() -> None:
    web = web_link(BASE, "AISNE-HAUTE-SOMME")
    tg = telegram_link("CnrSanteHdfBot", "AISNE-HAUTE-SOMME")
    text = render_svg(
        Poster(
            campaign_name="CNR Santé en territoire – Hauts-de-France",
            territory_name="Aisne Haute-Somme",
            web_url=web,
            telegram_url=tg,
            closes_on=date(2023, 3, 1),
        )
    )
    root = parse(text)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (
        "210mm",
        "297mm",
        "0 0 210 297",
    )
    assert " ".join(texts(root, "campaign")) == "CNR Santé en territoire – Hauts-de-France"
    assert " ".join(texts(root, "territory")) == "Territoire : Aisne Haute-Somme"
    assert link_lines(root) == [shown_link(web), shown_link(tg)]
    every = " ".join(texts(root))
    assert "Votre santé, votre avis" in every
    assert "Scannez un des codes avec l’appareil photo de votre téléphone." in every
    assert "Vous pouvez participer jusqu’au 1er mars 2023." in every
    hrefs = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert hrefs == [web, tg]
    assert {g.get("id") for g in root.iter(f"{SVG}g")} >= {"qr-web", "qr-telegram"}


def test_without_the_bot_only_the_web_code() -> None:
    root = parse(render_svg(Poster("CNR", "Oise", web_link(BASE, "OISE"))))
    assert root.find(".//*[@id='qr-telegram']") is None
    assert root.find(".//*[@id='qr-web']") is not None
    assert "Scannez le code avec l’appareil photo de votre téléphone." in " ".join(texts(root))
    assert "jusqu’au" not in " ".join(texts(root))


def test_hostile_names_stay_text() -> None:
    nasty = HOSTILE_CAMPAIGN + "\x00\x1b\ufffe"  # control characters XML forbids, even escaped
    text = render_svg(
        Poster(nasty, HOSTILE_TERRITORY, web_link(BASE, "OISE"), "https://t.me/Bot_x?start=o")
    )
    root = parse(text)
    assert "<script" not in text and "<b>" not in text
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == f"Affiche – {HOSTILE_CAMPAIGN} – {HOSTILE_TERRITORY}"
    assert " ".join(texts(root, "campaign")) == HOSTILE_CAMPAIGN
    assert " ".join(texts(root, "territory")) == f"Territoire : {HOSTILE_TERRITORY}"
    assert [e.tag for e in root.iter() if not e.tag.startswith(SVG)] == []


def test_a_very_long_name_is_cut_not_spilled() -> None:
    long_name = "Consultation " * 60
    root = parse(render_svg(Poster(long_name, "T" * 300, web_link(BASE, "OISE"))))
    for group in ("campaign", "territory"):
        lines = texts(root, group)
        assert len(lines) == 2 and lines[-1].endswith("…"), group


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean CNR_* environment on a new SQLite file in ``tmp_path`` (the working directory)."""
    for name in list(os.environ):
        if name.startswith("CNR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cnr.db")
    monkeypatch.setenv("CNR_SECRET_KEY", "test-secret-not-for-production")
    monkeypatch.setenv("CNR_WEB_PUBLIC_URL", BASE)
    monkeypatch.setenv("CNR_TELEGRAM_BOT_USERNAME", "CnrSanteHdfBot")
    return monkeypatch


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["poster", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_poster_for_a_territory_named_as_citizens_write_it(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "affiche.svg"
    code, stdout, stderr = run(capsys, "--territory", "métropole flandres", "--out", str(out))
    assert code == 0, stderr
    assert "METROPOLE-FLANDRES" in stdout and str(out) in stdout
    root = parse(out.read_text(encoding="utf-8"))
    assert " ".join(texts(root, "campaign")) == "CNR Santé en territoire – Hauts-de-France"
    assert [a.get("href") for a in root.iter(f"{SVG}a")] == [
        f"{BASE}?territoire=metropole-flandres",
        "https://t.me/CnrSanteHdfBot?start=metropole-flandres",
    ]
    assert "CNR_TELEGRAM_BOT_USERNAME" not in stderr
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".svg"] == ["affiche.svg"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".affiche")]


def test_url_option_overrides_the_setting_and_no_username_means_web_only(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("CNR_TELEGRAM_BOT_USERNAME")
    out = tmp_path / "oise.svg"
    url = "https://www.ars.example.fr/cnr-sante"
    code, _, stderr = run(capsys, "--territory", "OISE", "--out", str(out), "--url", url)
    assert code == 0, stderr
    assert "CNR_TELEGRAM_BOT_USERNAME is not set" in stderr
    root = parse(out.read_text(encoding="utf-8"))
    assert [a.get("href") for a in root.iter(f"{SVG}a")] == [f"{url}?territoire=oise"]


def test_all_territories_into_a_directory(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "affiches" / "hdf"
    code, stdout, stderr = run(capsys, "--all", "--out", str(out))
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"HDF-2022_{c}_affiche.svg" for c in HDF_CODES
    )
    assert len(stdout.splitlines()) == len(HDF_CODES)
    for path in out.iterdir():
        parse(path.read_text(encoding="utf-8"))


def test_repeated_territories_go_into_a_directory_once_each(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deux"
    code, _, stderr = run(
        capsys,
        "--territory",
        "oise",
        "--territory",
        "Littoral Nord",
        "--territory",
        "OISE",
        "--out",
        str(out),
    )
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "HDF-2022_LITTORAL-NORD_affiche.svg",
        "HDF-2022_OISE_affiche.svg",
    ]


def test_missing_web_address_says_what_to_set_and_touches_nothing(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("CNR_WEB_PUBLIC_URL")
    code, stdout, stderr = run(capsys, "--territory", "OISE", "--out", str(tmp_path / "a.svg"))
    assert code == 2 and stdout == ""
    assert "CNR_WEB_PUBLIC_URL" in stderr and "--url" in stderr
    assert list(tmp_path.iterdir()) == []  # not even a database


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("--url", "ftp://contribuer.ars.example.fr/"),
        ("--url", "contribuer.ars.example.fr"),
        ("--url", "javascript:alert(1)"),
        ("CNR_WEB_PUBLIC_URL", "https://exa mple.fr/"),
    ],
)
def test_bad_web_address_is_refused(
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
    value: str,
) -> None:
    argv = ["--territory", "OISE", "--out", str(tmp_path / "a.svg")]
    if where == "--url":
        argv += ["--url", value]
    else:
        env.setenv(where, value)
    code, _, stderr = run(capsys, *argv)
    assert code == 2
    assert stderr.startswith(f"cnrbot poster: error: {where}: ")
    assert "http" in stderr
    assert not (tmp_path / "a.svg").exists()


def test_bad_bot_username_is_refused(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("CNR_TELEGRAM_BOT_USERNAME", "https://t.me/CnrSanteHdfBot")
    code, _, stderr = run(capsys, "--territory", "OISE", "--out", str(tmp_path / "a.svg"))
    assert code == 2 and "CNR_TELEGRAM_BOT_USERNAME" in stderr


def test_unknown_territory_lists_the_valid_codes(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = run(
        capsys, "--territory", "OISE", "--territory", "Paris", "--out", str(tmp_path / "x")
    )
    assert code == 2 and stdout == ""
    assert "unknown territory 'Paris' in campaign HDF-2022" in stderr
    assert "valid codes: " + ", ".join(HDF_CODES) in stderr
    assert not (tmp_path / "x").exists()


def test_unknown_campaign_is_refused(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = run(
        capsys, "--campaign", "IDF-2030", "--territory", "OISE", "--out", str(tmp_path / "a.svg")
    )
    assert code == 2
    assert "unknown campaign 'IDF-2030' (known: HDF-2022)" in stderr


@pytest.mark.parametrize("case", ["parent missing", "parent is a file", "directory is a file"])
def test_unwritable_output_path(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    (tmp_path / "plain.txt").write_text("not a directory")
    argv = {
        "parent missing": ["--territory", "OISE", "--out", str(tmp_path / "nope" / "a.svg")],
        "parent is a file": ["--territory", "OISE", "--out", str(tmp_path / "plain.txt" / "a.svg")],
        "directory is a file": ["--all", "--out", str(tmp_path / "plain.txt")],
    }[case]
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2 and stdout == ""
    assert re.match(r"cnrbot poster: error: cannot (write|create the directory) ", stderr), stderr
    assert (tmp_path / "plain.txt").read_text() == "not a directory"


def test_campaign_and_territory_names_with_xml_characters(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names come from a campaign file: whatever they hold, the poster stays valid XML."""
    toml = SHIPPED.read_text(encoding="utf-8")
    toml = toml.replace(
        'name = "CNR Santé en territoire – Hauts-de-France"',
        "name = " + _toml_string(HOSTILE_CAMPAIGN),
    ).replace('name = "Oise"', "name = " + _toml_string(HOSTILE_TERRITORY))
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(toml, encoding="utf-8")
    env.setenv("CNR_DEFAULT_CAMPAIGN_FILE", str(hostile))
    out = tmp_path / "a.svg"
    code, _, stderr = run(capsys, "--territory", "oise", "--out", str(out))
    assert code == 0, stderr
    text = out.read_text(encoding="utf-8")
    assert "<script" not in text and "<b>" not in text
    root = parse(text)
    assert " ".join(texts(root, "campaign")) == HOSTILE_CAMPAIGN
    assert " ".join(texts(root, "territory")) == f"Territoire : {HOSTILE_TERRITORY}"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_on_each_database(
    db_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command opens SQLite and PostgreSQL alike (a new database: migrated and loaded)."""
    for name in list(os.environ):
        if name.startswith("CNR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    monkeypatch.setenv("CNR_SECRET_KEY", "test-secret-not-for-production")
    out = tmp_path / "a.svg"
    code, _, stderr = run(capsys, "--territory", "Hainaut", "--out", str(out), "--url", BASE)
    assert code == 0, stderr
    assert f"{BASE}?territoire=hainaut" in out.read_text(encoding="utf-8")


# --- what a phone reads (real Chromium, OpenCV's decoder) ----------------------------------------


@pytest.fixture
def posters(env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Every territory's poster, written by the command (both codes), plus a web-only one."""
    code, _, stderr = run(capsys, "--all", "--out", str(tmp_path / "all"))
    assert code == 0, stderr
    env.delenv("CNR_TELEGRAM_BOT_USERNAME")
    code, _, stderr = run(capsys, "--territory", "oise", "--out", str(tmp_path / "web-only.svg"))
    assert code == 0, stderr
    return tmp_path


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
async def test_codes_decode_to_the_links_printed_under_them(posters: Path) -> None:
    cv2 = pytest.importorskip("cv2", reason="the test extra's opencv-python-headless")
    import numpy as np
    from playwright.async_api import async_playwright

    cases: list[tuple[Path, tuple[str, ...]]] = [
        (p, ("web", "telegram")) for p in sorted((posters / "all").iterdir())
    ]
    cases.append((posters / "web-only.svg", ("web",)))
    # OpenCV's two decoders; the classic one misses some clean codes at some scales.
    detectors = [cv2.QRCodeDetectorAruco(), cv2.QRCodeDetector()]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # A4 at 96 dpi, twice as dense: a printed page seen by a phone's camera.
            page = await browser.new_page(
                viewport={"width": 794, "height": 1123}, device_scale_factor=2
            )
            for path, kinds in cases:
                root = parse(path.read_text(encoding="utf-8"))
                expected = [a.get("href") for a in root.iter(f"{SVG}a")]
                assert link_lines(root) == [shown_link(str(u)) for u in expected]
                await page.goto(path.as_uri())
                for kind, url in zip(kinds, expected, strict=True):
                    png = await page.locator(f"#qr-{kind}").screenshot()
                    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
                    decoded = next(
                        (text for d in detectors if (text := d.detectAndDecode(image)[0])), ""
                    )
                    assert decoded == url, (path.name, kind)
                await _check_layout(page, path.name)
        finally:
            await browser.close()


async def _check_layout(page: object, name: str) -> None:
    """Every line of text is inside the page, and nothing runs into the footer band."""
    boxes = await page.evaluate(  # type: ignore[attr-defined]
        """() => {
            const svg = document.documentElement;
            const texts = [...svg.querySelectorAll('text')].map(t => {
                const b = t.getBBox();
                return {text: t.textContent, x: b.x, y: b.y, right: b.x + b.width,
                        bottom: b.y + b.height};
            });
            const rects = [...svg.querySelectorAll('rect')].map(r => r.getBBox());
            const footer = rects.filter(b => b.x === 0 && b.y > 200 && b.width === 210)[0];
            const codes = [...svg.querySelectorAll('g[id^=qr-], g.link')].map(g => {
                const b = g.getBBox(); return {y: b.y, bottom: b.y + b.height};
            });
            return {texts, footerTop: footer.y, codes};
        }"""
    )
    for box in boxes["texts"]:
        assert box["x"] >= 0 and box["right"] <= 210, (name, box)
        assert box["y"] >= 0 and box["bottom"] <= 297, (name, box)
    for code in boxes["codes"]:
        assert code["bottom"] <= boxes["footerTop"], (name, code)
