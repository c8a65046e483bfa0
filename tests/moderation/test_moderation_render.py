"""What the console shows: hostile contribution texts inert, personal data highlighted,
the dashboard's counts and charts, staff pages, accounts (CLI and console)."""

from __future__ import annotations

import io
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.charts import EMPTY, bar_chart, column_chart
from moderation.dsfr import DSFR_VERSION
from moderation.highlight import highlight
from moderation.security import hash_password, verify_password
from storage.models import AuditEntry, Contribution, Staff
from storage.settings import Settings
from tests.moderation_helpers import Console, World, new_console

HOSTILE_TEXTS = {
    "script": "<script>window.__pwned=1</script>",
    "html": '<a href="javascript:alert(1)" onclick="x()">clic</a><iframe src="//evil"></iframe>',
    "markdown": "# Titre\n**gras** [lien](http://evil.example) ![img](http://evil.example/x.png)",
    "long": "a" * 3000,
    "rtl": "\u202eerreur \u0627\u0644\u0645\u0633\u062a\u0634\u0641\u0649",
    "zero_width": "mot\u200bcaché\u200d\ufeff",
    "attr": '" onmouseover="alert(1)',
}


async def test_hostile_contribution_texts_are_shown_as_inert_text(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == "HDF-OISE-000001"))
        assert c is not None
        c.need = "\n".join(HOSTILE_TEXTS.values())
        c.solution = HOSTILE_TEXTS["attr"]
        c.levers = HOSTILE_TEXTS["markdown"]
        c.custom_theme = HOSTILE_TEXTS["script"]
        await s.commit()
    for path in ("/contributions/HDF-OISE-000001", "/contributions?status="):
        page = await (await admin.client.get(path)).text()
        assert "<script>window" not in page
        assert "<iframe" not in page and '<a href="javascript' not in page
        assert 'onmouseover="alert' not in page
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
        assert "<h1>Titre" not in page and "<strong>gras" not in page
        # the only scripts are the console's own file and the vendored DSFR's (no inline one)
        assert re.findall(r"<script[^>]*>", page) == [
            f'<script type="module" src="/dsfr/dsfr.module.min.js?v={DSFR_VERSION}">',
            f'<script nomodule src="/dsfr/dsfr.nomodule.min.js?v={DSFR_VERSION}">',
            '<script src="/static/console.js" defer>',
        ]
    page = await (await admin.client.get("/contributions/HDF-OISE-000001")).text()
    assert 'class="text" dir="auto"' in page
    # invisible and direction characters are made visible (and so cannot reorder the page)
    assert ">U+202E</span>" in page and ">U+200B</span>" in page
    assert "\u202e" not in page.split('<div class="text" dir="auto">')[1].split("</div>")[0]
    css = await (await admin.client.get("/static/console.css")).text()
    assert "overflow-wrap: anywhere" in css


def test_highlight_escapes_then_marks() -> None:
    text = "Écrivez à <b>jean.dupont@example.org</b> ou au 06 12 34 56 78 <script>"
    out = highlight(text)
    assert isinstance(out, Markup)
    assert "<b>" not in out and "&lt;b&gt;" in out and "&lt;script&gt;" in out
    marks = re.findall(r'<mark class="pii"[^>]*>(.*?)</mark>', out)
    assert "jean.dupont@example.org" in marks
    assert any("06 12 34 56 78" in m for m in marks)
    assert highlight("") == Markup("") and highlight(None) == Markup("")
    # the exporter's detector: names, IBAN, postal addresses too, each labelled
    out = highlight(
        "Je m'appelle Jean Dupont, IBAN FR76 3000 6000 0112 3456 7890 189, "
        "j'habite 12 rue de la Paix à Amiens"
    )
    titles = re.findall(r'<mark class="pii" title="Donnée personnelle probable : ([^"]+)">', out)
    assert titles == ["nom de personne", "IBAN", "adresse postale"]
    # an address inside an attribute-looking text cannot break out
    out = highlight('"><script>x</script>a@b.fr')
    assert "<script>" not in out


def test_charts_are_plain_svg_with_escaped_labels() -> None:
    svg = bar_chart([("<script>x</script>", 3), ("vide", 0)], title='t"<')
    assert svg.startswith("<svg") and "<script>" not in svg and "&lt;script&gt;" in svg
    assert f'fill="{EMPTY}"' in svg  # zero stands out
    cols = column_chart([("01/11", 1), ("02/11", 0), ("03/11", 4)], title="jours")
    assert cols.count("<rect") == 3
    assert "aucune donnée" in bar_chart([], title="x")


async def test_dashboard_counts_and_flags_empty_themes(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == "HDF-SOMME-000002"))
        assert c is not None
        c.status = "approved"
        c.created_at = c.created_at + timedelta(days=3)
        await s.commit()
    page = await (await admin.client.get("/dashboard")).text()
    assert "<strong>8</strong> en attente" in page
    assert "<strong>1</strong> approuvées" in page
    assert "Thèmes sans aucune contribution" in page
    assert "4 — Thème numéro 4" in page and "5 — Thème numéro 5" in page
    assert "Plus ancienne en attente" in page and "HDF-OISE-000001" in page
    assert "Clôture le 31/01/2099" in page
    assert page.count('<svg class="chart"') == 3
    # per day: the 3 days from the first to the last, the gap as zero
    day_chart = page.split("Contributions reçues par jour</title>")[1].split("</svg>")[0]
    assert day_chart.count("<rect") == 4
    assert "03/11/2022 : 0" in day_chart


async def test_days_and_times_are_those_of_the_staff(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Sent at 23:30 UTC on 20 November = 00:30 on 21 November in Paris (CNR_TIMEZONE): the
    console shows, filters and counts it on the 21st, as the exporter's dates do."""
    late = datetime(2022, 11, 20, 23, 30, tzinfo=UTC)
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == "HDF-OISE-000001"))
        assert c is not None
        c.created_at = late
        s.add(AuditEntry(at=late, actor="admin@ars.test", action="test", target="HDF-OISE-000001"))
        await s.commit()
    detail = await (await admin.client.get("/contributions/HDF-OISE-000001")).text()
    assert "21/11/2022 00:30" in detail and "20/11/2022" not in detail

    async def listed(day: str) -> list[str]:
        params = {"since": day, "until": day, "status": ""}
        page = await (await admin.client.get("/contributions", params=params)).text()
        return re.findall(r'data-rowlink href="/contributions/(HDF-[A-Z]+-\d{6})', page)

    assert await listed("2022-11-21") == ["HDF-OISE-000001"]
    assert await listed("2022-11-20") == []
    audit = await (
        await admin.client.get("/audit", params={"since": "2022-11-21", "until": "2022-11-21"})
    ).text()
    assert "21/11/2022 00:30" in audit and audit.count("<bdi>HDF-OISE-000001</bdi>") == 1
    audit = await (
        await admin.client.get("/audit", params={"since": "2022-11-20", "until": "2022-11-20"})
    ).text()
    assert "<bdi>HDF-OISE-000001</bdi>" not in audit
    page = await (await admin.client.get("/dashboard")).text()
    day_chart = page.split("Contributions reçues par jour</title>")[1].split("</svg>")[0]
    assert "21/11/2022 : 1" in day_chart and "20/11/2022 : 0" in day_chart


async def test_staff_pages_create_reset_disable(
    admin: Console,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    db_settings: Settings,
    engine: AsyncEngine,
) -> None:
    page = await (await admin.client.get("/staff")).text()
    assert "oise@ars.test" in page and 'for="s-email"' in page
    resp = await admin.post(
        "/staff",
        {
            "email": "Nouveau@ARS.test",
            "role": "moderator",
            "territories": str(world.territories["AISNE"]),
        },
    )
    assert resp.status == 200  # type: ignore[attr-defined]
    text = await resp.text()  # type: ignore[attr-defined]
    password = re.search(r'<code class="password">([^<]+)</code>', text)
    assert password
    newcomer = await new_console(db_settings, engine)
    try:
        assert await newcomer.login("nouveau@ars.test", password.group(1)) == 303
        page = await (await newcomer.client.get("/contributions")).text()
        assert "HDF-AISNE-000001" in page and "HDF-OISE-000001" not in page
        # a moderator without territories is refused, and duplicates too
        for data in (
            {"email": "x@ars.test", "role": "moderator"},
            {"email": "nouveau@ars.test", "role": "admin"},
        ):
            resp = await admin.post("/staff", data)
            assert resp.status == 422  # type: ignore[attr-defined]
        async with sessions() as s:
            sid = await s.scalar(select(Staff.id).where(Staff.email == "nouveau@ars.test"))
        resp = await admin.post(f"/staff/{sid}/disable")
        assert resp.status == 200  # type: ignore[attr-defined]
        after = await newcomer.client.get("/contributions", allow_redirects=False)
        assert after.status == 303  # logged out everywhere
        resp = await admin.post(f"/staff/{sid}/reset")
        assert resp.status == 200  # type: ignore[attr-defined]
    finally:
        await newcomer.client.close()
    async with sessions() as s:
        actions = list(await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert {"staff_add", "staff_disable", "staff_reset"} <= set(actions)


def test_real_argon2_hashes() -> None:
    from moderation import security

    real = security.PasswordHasher()
    h = real.hash("un mot de passe solide")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "un mot de passe solide")
    assert not verify_password(h, "un mot de passe solidE")
    assert not verify_password("not a hash", "x")
    assert hash_password("abc") != hash_password("abc")  # salted (cheap parameters here)


async def test_staff_cli(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from bot.cli import main

    for k, v in (
        ("CNR_DATABASE_URL", db_settings.database_url),
        ("CNR_SECRET_KEY", "test-secret-not-for-production"),
    ):
        monkeypatch.setenv(k, v)
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        return main(list(argv))

    loop_free = asyncio.to_thread
    assert (
        await loop_free(
            run,
            "staff",
            "add",
            "cli@ars.test",
            "--role",
            "moderator",
            "--territory",
            "OISE",
            "SOMME",
            stdin="un mot de passe piped\n",
        )
        == 0
    )
    assert (
        await loop_free(
            run, "staff", "add", "gen@ars.test", "--role", "admin", "--generate-password"
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "affiché une seule fois" in out
    for argv, stdin in (
        (
            ("staff", "add", "bad@ars.test", "--role", "moderator", "--territory", "NOPE"),
            "un mot de passe piped\n",
        ),
        (("staff", "add", "short@ars.test", "--role", "admin"), "court\n"),
        (("staff", "add", "cli@ars.test", "--role", "admin"), "un mot de passe piped\n"),
        (("staff", "add", "<b>@x\x00", "--role", "admin"), "un mot de passe piped\n"),
        (("staff", "disable", "unknown@ars.test"), ""),
    ):
        assert await loop_free(run, *argv, stdin=stdin) == 2, argv
    assert "erreur" in capsys.readouterr().err
    assert await loop_free(run, "staff", "list") == 0
    listing = capsys.readouterr().out
    assert "cli@ars.test\tmoderator\tOISE,SOMME\tactif" in listing
    assert await loop_free(run, "staff", "disable", "CLI@ars.test") == 0
    assert (
        await loop_free(
            run, "staff", "reset-password", "cli@ars.test", stdin="un autre mot de passe\n"
        )
        == 0
    )
    async with sessions() as s:
        staff = await s.scalar(select(Staff).where(Staff.email == "cli@ars.test"))
        assert staff is not None and staff.disabled
        assert verify_password(staff.password_hash, "un autre mot de passe")
        actions = list(await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["staff_add", "staff_add", "staff_disable", "staff_reset"]


async def test_detail_page_highlights_personal_data(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == "HDF-OISE-000002"))
        assert c is not None
        c.need = "Appelez-moi au 06 12 34 56 78 <b>ou</b> marie.curie@example.fr"
        await s.commit()
    page = await (await admin.client.get("/contributions/HDF-OISE-000002")).text()
    assert page.count('<mark class="pii"') == 2
    assert "2 donnée(s) personnelle(s) probable(s)" in page
    assert "&lt;b&gt;ou&lt;/b&gt;" in page
    # the edit form holds the raw text, escaped, for redaction
    assert '<textarea id="edit-need"' in page and "&lt;b&gt;ou&lt;/b&gt; marie" in page


async def test_audit_log_is_paginated_and_admins_cannot_reset_themselves_here(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
) -> None:
    con = await new_console(db_settings.model_copy(update={"console_page_size": 2}), engine)
    try:
        assert await con.login("admin@ars.test") == 303
        for i in range(1, 4):
            await con.post(f"/contributions/HDF-SOMME-00000{i}/approve", {"version": "1"})
        first = await (await con.client.get("/audit")).text()
        assert "4 entrée(s)" in first and "page 1 sur 2" in first
        assert first.count("<tr><td>") == 2
        second = await (await con.client.get("/audit", params={"page": "2"})).text()
        assert second.count("<tr><td>") == 2 and "login" in second  # oldest last
        resp = await con.post(f"/staff/{staff_ids['admin']}/reset")
        assert resp.status == 422  # type: ignore[attr-defined]
        still = await con.client.get("/audit", allow_redirects=False)
        assert still.status == 200  # still logged in: no session was dropped
    finally:
        await con.client.close()


async def test_texts_not_in_french_carry_their_language(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """RGAA 8.7: a change of language is marked (screen readers switch their voice)."""
    async with sessions() as s:
        for ref, lang in (("HDF-OISE-000001", "en"), ("HDF-OISE-000002", "falc")):
            c = await s.scalar(select(Contribution).where(Contribution.reference == ref))
            assert c is not None
            c.language = lang
        await s.commit()
    english = await (await admin.client.get("/contributions/HDF-OISE-000001")).text()
    assert '<div class="text" dir="auto" lang="en">' in english
    assert (
        '<textarea id="edit-need" class="fr-input" name="need" rows="5" dir="auto" lang="en">'
        in (english)
    )
    for ref in ("HDF-OISE-000002", "HDF-OISE-000003"):  # easy-to-read French, French
        page = await (await admin.client.get(f"/contributions/{ref}")).text()
        assert '<div class="text" dir="auto">' in page and 'lang="en"' not in page
        assert 'lang="falc"' not in page
    queue = await (await admin.client.get("/contributions")).text()
    assert queue.count('<bdi dir="auto" lang="en">') == 1


def test_other_lang_is_a_language_tag_or_nothing() -> None:
    from moderation.web import other_lang

    assert [other_lang(v) for v in ("en", "zh-cn", "ar", "pt-BR")] == ["en", "zh-cn", "ar", "pt-BR"]
    assert [other_lang(v) for v in ("fr", "fr-FR", "falc", "", None, 'en" x', "EN", "e")] == [
        ""
    ] * 8
