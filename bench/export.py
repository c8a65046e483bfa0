"""Export benchmark: 1,000 / 10,000 / 100,000 approved contributions over the 7 territories of
the Hauts-de-France campaign, every format, with the regional roll-up.

Each measurement runs in a fresh child process pinned to one core; the child reports its wall
time and peak resident memory (ru_maxrss). "per 1k" is the time per 1,000 contributions; "x base"
compares it with the 1,000 run (start-up costs weigh there), "x prev" with the previous size:
about 1 when the cost grows linearly; "cpu s" is the child's CPU time (user + system, imports
included), the figure to compare on a shared machine; "load" is the machine's 1-minute load
average when the measurement ended (under load, "seconds" is longer than "cpu s").
Target (issue 14): 100,000 contributions of ~500 characters (``--extra-words 40``), every
format and the regional roll-up (topics included), < 60 s and < 600 MB peak on one core.

    .venv/bin/python bench/export.py [--sizes 1000,10000,100000] [--formats all,docx,...]
        [--extra-words 40]   # ~500-character texts instead of ~100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.run import FORMATS, ExportRequest, run_export  # noqa: E402
from storage.campaign_file import builtin_campaign_path, read_campaign_file  # noqa: E402
from storage.campaigns_db import load_campaign  # noqa: E402
from storage.db import create_engine, session_factory, upgrade  # noqa: E402
from storage.models import Contribution, Participant, Territory, Theme  # noqa: E402
from storage.settings import Settings  # noqa: E402

SUBJECTS = [
    "Les personnes âgées",
    "Les jeunes",
    "Les familles",
    "Les patients en ALD",
    "Les habitants",
    "Les travailleurs précaires",
    "Les enfants",
    "Les femmes enceintes",
    "Les aidants",
    "Les personnes handicapées",
    "Les étudiants",
    "Les agriculteurs",
    "Les retraités",
]
PROBLEMS = [
    "n'ont plus de médecin traitant",
    "attendent des mois pour un rendez-vous",
    "vont aux urgences faute de généraliste",
    "renoncent aux soins dentaires",
    "ne trouvent pas de pédiatre",
    "manquent d'information sur la prévention",
    "font des kilomètres pour voir un spécialiste",
    "ne trouvent pas de psychologue",
    "attendent longtemps une place en EHPAD",
    "n'ont pas de transport vers l'hôpital",
    "ne connaissent pas les maisons de santé",
    "subissent la fermeture de la pharmacie",
]
SOLUTIONS = [
    "ouvrir une maison de santé pluriprofessionnelle",
    "créer un centre de santé municipal",
    "financer un bus de prévention itinérant",
    "développer la téléconsultation accompagnée",
    "recruter des assistants médicaux",
    "former des infirmiers en pratique avancée",
    "organiser des permanences de soins le samedi",
    "loger les internes en stage",
    "créer une navette solidaire vers l'hôpital",
    "renforcer la régulation du SAS",
    "déployer des médiateurs en santé",
    "ouvrir un centre de soins non programmés",
]
LEVERS = [
    "aides à l'installation",
    "foncier mis à disposition par la commune",
    "financement ARS",
    "coopération avec la CPTS",
    "simplification administrative",
    "numérique en santé",
    "",
    "",
    "",
]


def _vocab(rng: random.Random, n: int) -> list[str]:
    syllables = [
        "ba",
        "ri",
        "lon",
        "ville",
        "mont",
        "cour",
        "sur",
        "bec",
        "hem",
        "ghem",
        "court",
        "val",
        "fay",
        "ly",
        "nes",
        "tre",
        "mar",
        "sin",
        "po",
        "lu",
    ]
    return [
        "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()
        for _ in range(n)
    ]


def _text(
    rng: random.Random, places: list[str], parts: list[str], tail: str, extra_words: int = 0
) -> str:
    place = places[min(int(rng.paretovariate(1.2)) - 1, len(places) - 1)]
    extra = " ".join(rng.sample(places, 2))
    text = f"{rng.choice(parts)} {tail} à {place}, notamment vers {extra}."
    if extra_words:
        text += " Précisions : " + " ".join(rng.choice(places).lower() for _ in range(extra_words))
    return text


async def generate(url: str, n: int, seed: int = 42, extra_words: int = 0) -> None:
    """A database with ``n`` approved contributions (and 10 % pending/rejected ones); texts
    are ~100 characters, plus ``extra_words`` words (40: ~500 characters)."""
    rng = random.Random(seed)
    settings = Settings(database_url=url, secret_key="bench-secret-not-for-production")
    engine = create_engine(settings)
    await upgrade(engine)
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        res = await load_campaign(
            session, read_campaign_file(builtin_campaign_path("hauts-de-france-2022.toml"))
        )
        participant = Participant(key="b" * 64, channel="telegram", lang="fr")
        session.add(participant)
        await session.flush()
        territories = list(
            await session.scalars(select(Territory).where(Territory.campaign_id == res.campaign_id))
        )
        themes = list(
            await session.scalars(select(Theme).where(Theme.campaign_id == res.campaign_id))
        )
        pid, cid = participant.id, res.campaign_id
    places = _vocab(rng, 3000)
    profiles = ["patient", "aidant", "professionnel", "elu", None]
    total = int(n * 1.1)
    numbers = {t.id: 0 for t in territories}
    base = datetime(2022, 11, 7, 8, 0, tzinfo=UTC)
    rows = []
    async with engine.begin() as conn:
        for idx in range(total):
            t = territories[idx % len(territories)]
            th = themes[rng.randrange(len(themes))]
            numbers[t.id] += 1
            status = "approved" if idx < n else rng.choice(["pending", "rejected"])
            rows.append(
                {
                    "reference": f"HDF-{t.code}-{numbers[t.id]:06d}",
                    "campaign_id": cid,
                    "territory_id": t.id,
                    "theme_id": th.id,
                    "custom_theme": rng.choice(["Transports", "Logement", "Numérique"])
                    if th.code == "5"
                    else None,
                    "need": _text(rng, places, SUBJECTS, rng.choice(PROBLEMS), extra_words),
                    "solution": _text(
                        rng,
                        places,
                        ["Il faudrait", "Nous proposons de", "Pourquoi ne pas"],
                        rng.choice(SOLUTIONS),
                        extra_words,
                    ),
                    "levers": rng.choice(LEVERS) or None,
                    "profile": rng.choice(profiles),
                    "language": "fr" if rng.random() < 0.95 else "en",
                    "channel": "telegram",
                    "consent_version": "2022-11-v1",
                    "status": status,
                    "participant_id": pid,
                    "draft_id": idx + 1,
                    "created_at": base + timedelta(seconds=idx * 30),
                    "updated_at": base + timedelta(seconds=idx * 30),
                    "version": 1,
                }
            )
            if len(rows) == 5000:
                await conn.execute(insert(Contribution), rows)
                rows = []
        if rows:
            await conn.execute(insert(Contribution), rows)
    await engine.dispose()


def child(url: str, formats: str, out: str) -> None:
    """Run one export in this process (pinned to one core) and print its figures as JSON."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = Settings(database_url=url, secret_key="bench-secret-not-for-production")
    request = ExportRequest(
        campaign="HDF-2022", out=Path(out), region=True, formats=tuple(formats.split(","))
    )
    start = time.perf_counter()
    result = asyncio.run(run_export(settings, request))
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss
    size = sum(w.path.stat().st_size for w in result.written)
    print(
        json.dumps(
            {
                "seconds": seconds,
                # the whole child's (imports too): the figure that does not depend on load
                "cpu": usage.ru_utime + usage.ru_stime,
                "peak_mib": peak_kib / 1024,
                "files": len(result.written),
                "bytes": size,
                "total": result.total,
            }
        )
    )


def measure(url: str, formats: str, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", url, formats, str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--formats", default="all," + ",".join(FORMATS))
    parser.add_argument(
        "--extra-words", type=int, default=0, help="longer texts: add N words (40: ~500 chars)"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("URL", "FORMATS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.formats.split(",")]
    baseline: dict[str, float] = {}
    previous: dict[str, float] = {}
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(
        f"{'contributions':>13} {'format':>6} {'seconds':>8} {'cpu s':>7} {'per 1k':>7} "
        f"{'x base':>7} {'x prev':>7} {'peak MiB':>9} {'files':>5} {'MiB out':>8} {'load':>5}"
    )
    with tempfile.TemporaryDirectory(prefix="cnr-bench-export-") as tmp:
        for n in sizes:
            db = Path(tmp) / f"bench-{n}.db"
            url = f"sqlite+aiosqlite:///{db}"
            t0 = time.perf_counter()
            asyncio.run(generate(url, n, extra_words=args.extra_words))
            print(
                f"# {n} approved contributions (+10 % pending/rejected) generated in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            for kind in kinds:
                formats = ",".join(FORMATS) if kind == "all" else kind
                fig = measure(url, formats, Path(tmp) / f"out-{n}-{kind}")
                per_k = fig["seconds"] / n * 1000
                baseline.setdefault(kind, per_k)
                growth = per_k / previous.get(kind, per_k)
                previous[kind] = per_k
                print(
                    f"{n:>13} {kind:>6} {fig['seconds']:>8.2f} {fig['cpu']:>7.2f} {per_k:>7.3f} "
                    f"{per_k / baseline[kind]:>7.2f} {growth:>7.2f} {fig['peak_mib']:>9.0f} "
                    f"{int(fig['files']):>5} {fig['bytes'] / 2**20:>8.1f} "
                    f"{os.getloadavg()[0]:>5.2f}",
                    flush=True,
                )
            db.unlink()


if __name__ == "__main__":
    main()
