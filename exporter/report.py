"""The annex document as data: what every writer (DOCX, ODT, Markdown) renders.

The shape follows the annex of the national instruction (``seeds/002_*``, end of file):

    CNR Santé [territoire]
    I - Éléments de contexte / La situation du territoire / Les contributions recueillies
    II - Solutions et propositions / 1 - ... 5 - (Constats, Solutions, Propositions)
    III - Perspectives
    Annexe : liste des contributions
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from exporter.similarity import Group, group_similar
from exporter.source import CampaignData, Item
from exporter.topics import Contribution, Topic, Topics, TopicSettings, find_topics

TITLE = "CNR Santé {name}"
PART_I = "I - Éléments de contexte"
SITUATION = "La situation du territoire"
COLLECTED = "Les contributions recueillies"
PART_II = "II - Solutions et propositions"
PART_III = "III - Perspectives"
ANNEX = "Annexe : liste des contributions"
CONSTATS = "Constats :"
SOLUTIONS = "Solutions :"
PROPOSITIONS = "Propositions :"
SECTION_LABELS = (CONSTATS, SOLUTIONS, PROPOSITIONS)
INTRO_II = (
    "Contributions citoyennes recueillies par messagerie, approuvées par la modération. "
    "Chaque élément est suivi de sa référence ; les contributions très proches sont "
    "regroupées."
)
PLACEHOLDER_SITUATION = "[À compléter : la situation du territoire n'est pas renseignée.]"
PLACEHOLDER_CONTEXT = "[À compléter : le contexte régional n'est pas renseigné.]"
PLACEHOLDER_PERSPECTIVES = "[À compléter : les perspectives ne sont pas renseignées.]"
NO_CONTRIBUTION = "Aucune contribution citoyenne sur cette thématique."
NO_ITEM = "Aucun élément."
#: Under each of the three headings of a theme without contribution (the annex's skeleton is
#: the same in every territory's document).
NO_SECTION_CONTRIBUTION = "Aucune contribution."
TOPICS_LABEL = "Principaux sujets :"
NO_TOPIC = "Aucun sujet commun à plusieurs contributions."
REGION_TOPICS = "Les sujets sont dégagés par territoire : voir les documents des territoires."
#: Topics listed under "Principaux sujets" (the data files give every contribution its topic).
MAIN_TOPICS = 5
#: References shown inline for a group of similar contributions or a topic; the others are in
#: the annex (groups) or the data files (topics).
INLINE_REFERENCES = 3
GROUPED = "Contributions similaires regroupées :"
#: The exporter's topic settings: only the main topics need YAKE's labels, from fewer and
#: shorter texts (YAKE's cost is per topic: ~100 sections of 5 topics in a regional export).
EXPORT_TOPICS = TopicSettings(labelled_topics=MAIN_TOPICS, label_texts=8, label_chars=300)
ANNEX_COLUMNS = ("Référence", "Date", "Thématique", "Profil", "Langue")
#: The annex rows are lines "reference · date · theme · profile · language" (a table of
#: 100,000 rows would cost 21 XML elements a row in DOCX and 11 in ODT).
ANNEX_SEPARATOR = " · "
ANNEX_HEADER = ANNEX_SEPARATOR.join(ANNEX_COLUMNS)
NO_PROFILE = "non renseigné"
#: The channels a contribution comes from, as the annex (and the console) name them.
CHANNELS = {"telegram": "Telegram", "web": "Site web", "terminal": "Terminal (essai)"}
LANGUAGES = {"fr": "français", "en": "anglais"}
#: Metadata date of documents with no contribution (documents must not carry "now").
EPOCH = datetime(2022, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Sections:
    """The three lists of a theme (or of a supplementary label)."""

    constats: list[Group]
    solutions: list[Group]
    propositions: list[Group]
    #: The topics of these contributions; None in the regional roll-up (topics are found per
    #: territory).
    topics: Topics | None = None

    def as_pairs(self) -> list[tuple[str, list[Group]]]:
        return [
            (CONSTATS, self.constats),
            (SOLUTIONS, self.solutions),
            (PROPOSITIONS, self.propositions),
        ]


@dataclass(frozen=True)
class Subtheme:
    label: str
    count: int
    sections: Sections


@dataclass(frozen=True)
class ThemeBlock:
    number: int
    heading: str
    count: int
    #: Themes 1-4: the sections (None when there is no contribution).
    sections: Sections | None = None
    #: Theme 5: one block per supplementary label.
    subthemes: list[Subtheme] = field(default_factory=list)


@dataclass(frozen=True)
class Stats:
    count: int
    first: date | None
    last: date | None
    channels: list[tuple[str, int]]
    profiles: list[tuple[str, int]]
    languages: list[tuple[str, int]]
    per_theme: list[tuple[str, int]]

    def lines(self) -> list[str]:
        """The "Les contributions recueillies" paragraphs."""
        if self.count == 0:
            return ["Aucune contribution approuvée pour cette sélection."]
        period = (
            f"du {self.first:%d/%m/%Y} au {self.last:%d/%m/%Y}"
            if self.first != self.last
            else f"le {self.first:%d/%m/%Y}"
        )

        def counts(pairs: list[tuple[str, int]]) -> str:
            return ", ".join(f"{label} : {n}" for label, n in pairs)

        return [
            f"Nombre de contributions approuvées : {self.count} ({period}).",
            f"Canal : {counts(self.channels)}.",
            f"Profils des participants (déclaratifs) : {counts(self.profiles)}.",
            f"Langues : {counts(self.languages)}.",
            f"Par thématique : {counts(self.per_theme)}.",
        ]


@dataclass(frozen=True)
class AnnexRow:
    reference: str
    date: str
    theme: str
    profile: str
    language: str

    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.reference, self.date, self.theme, self.profile, self.language)

    def line(self) -> str:
        return ANNEX_SEPARATOR.join(self.cells())


@dataclass(frozen=True)
class Report:
    title: str
    is_region: bool
    situation_heading: str
    situation: str
    stats: Stats
    themes: list[ThemeBlock]
    perspectives: str
    annex: list[AnnexRow]
    #: Metadata date of the documents: the last submission (never "now": determinism).
    stamp: datetime
    #: Regional roll-up: territory x theme counts (header row first).
    matrix: list[list[str]] = field(default_factory=list)
    #: PNG bar chart (``--charts``); None when not asked for.
    chart_png: bytes | None = None


def _references(references: Sequence[str], rest: str) -> str:
    """The first :data:`INLINE_REFERENCES` references, then how many others and where."""
    shown = ", ".join(references[:INLINE_REFERENCES])
    hidden = len(references) - INLINE_REFERENCES
    if hidden > 0:
        shown += f" et {hidden} {'autre' if hidden == 1 else 'autres'} {rest}"
    return shown


def entry_text(group: Group) -> str:
    """An item line: the text, its reference, and the references of similar ones (a few
    inline, the rest in the annex: :func:`grouped_text`)."""
    line = f"{group.text} — {group.reference}"
    if group.similar:
        n = len(group.similar)
        word = "contribution similaire" if n == 1 else "contributions similaires"
        line += f" ({n} {word} : {_references(group.similar, 'en annexe')})"
    return line


def is_long_group(group: Group) -> bool:
    """Whether some of the group's references are listed in the annex only."""
    return len(group.similar) > INLINE_REFERENCES


def grouped_text(group: Group, label: str) -> str:
    """The annex line of a long group of the list ``label`` ("Constats :"): its first
    reference, the list, then every similar reference."""
    similar = ", ".join(group.similar)
    return f"{group.reference}, {label.rstrip(' :')} ({len(group.similar)}) : {similar}"


def topic_text(topic: Topic) -> str:
    """A "Principaux sujets" line: label, contributions, citizens, a few references."""
    n, p = topic.size, topic.participants
    counts = f"{n} contribution{'s' if n > 1 else ''}, {p} participant{'s' if p > 1 else ''}"
    refs = _references(topic.contributions, "(fichiers de données)")
    return f"{topic.label} ({counts}) — {refs}"


def section_key(item: Item) -> str:
    """The part of the annex an item is in: its theme number, or under theme 5 its label."""
    if item.theme_number == 5:
        return "5:" + " ".join((item.supplementary or "").casefold().split())
    return str(item.theme_number)


def find_section_topics(
    items: Sequence[Item], settings: TopicSettings = EXPORT_TOPICS
) -> dict[str, Topics]:
    """The topics of each part of the annex (:func:`section_key`) of one territory."""
    parts: dict[str, list[Contribution]] = {}
    for i in items:
        parts.setdefault(section_key(i), []).append(
            Contribution(i.reference, str(i.participant), i.need, i.solution)
        )
    return {key: find_topics(part, settings) for key, part in sorted(parts.items())}


def topic_columns(topics: Mapping[str, Topics]) -> dict[str, tuple[str, str]]:
    """reference -> (topic id, topic label) for the data files; the id names the part of the
    annex ("2-T1": theme 2, topic T1; "5.3-T1": the third label of theme 5, topic T1)."""
    labels = sorted(k for k in topics if k.startswith("5:"))
    out: dict[str, tuple[str, str]] = {}
    for key, found in topics.items():
        part = f"5.{labels.index(key) + 1}" if key.startswith("5:") else key
        for topic in found.topics:
            for reference in topic.contributions:
                out[reference] = (f"{part}-{topic.id}", topic.label)
    return out


def theme_heading(number: int, label: str) -> str:
    return f"{number} - {label}"


def _sections(
    items: Sequence[Item],
    threshold: float,
    cache: dict[str, str] | None,
    topics: Topics | None,
    last_use: bool = False,
) -> Sections:
    def grouped(entries: list[tuple[str, str]]) -> list[Group]:
        return group_similar(entries, threshold, cache, last_use=last_use)

    return Sections(
        constats=grouped([(i.reference, i.need) for i in items if i.need]),
        solutions=grouped([(i.reference, i.solution) for i in items if i.solution]),
        propositions=grouped([(i.reference, i.levers) for i in items if i.levers]),
        topics=topics,
    )


def _counted(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _annex_theme(item: Item) -> str:
    if item.theme_number == 5 and item.supplementary:
        return f"5 - {item.supplementary}"
    return str(item.theme_number)


def build_report(
    campaign: CampaignData,
    items: Sequence[Item],
    *,
    territory_code: str | None,
    threshold: float,
    cache: dict[str, str] | None = None,
    topics: Mapping[str, Topics] | None = None,
    last_use: bool = False,
) -> Report:
    """The annex of one territory (``territory_code``) or the regional roll-up (``None``).

    ``topics`` (:func:`find_section_topics`) are found here when not given, for a territory;
    the regional roll-up has none (topics are found per territory). ``cache``: normalised
    texts (:func:`~exporter.similarity.group_similar`), emptied as they are used when
    ``last_use``."""
    tz = ZoneInfo(campaign.timezone)
    items = sorted(items, key=lambda i: i.reference)
    if topics is None and territory_code is not None:
        topics = find_section_topics(items)

    def topics_of(key: str) -> Topics | None:
        return None if topics is None else topics.get(key, Topics())

    local_dates = [i.submitted_at.astimezone(tz).date() for i in items]
    profile_label = campaign.profiles

    def profile_of(item: Item) -> str:
        return profile_label.get(item.profile, item.profile) if item.profile else NO_PROFILE

    by_number: dict[int, list[Item]] = {n: [] for n in range(1, 6)}
    for item in items:
        by_number.setdefault(item.theme_number, []).append(item)
    blocks: list[ThemeBlock] = []
    for number in sorted(by_number):
        theme_items = by_number[number]
        heading = theme_heading(number, campaign.theme_label(number))
        if number != 5:
            blocks.append(
                ThemeBlock(
                    number,
                    heading,
                    len(theme_items),
                    _sections(theme_items, threshold, cache, topics_of(str(number)), last_use)
                    if theme_items
                    else None,
                )
            )
            continue
        labels: dict[str, tuple[str, list[Item]]] = {}
        for item in theme_items:
            labels.setdefault(section_key(item), (item.supplementary or "", []))[1].append(item)
        subthemes = [
            Subtheme(
                label, len(group), _sections(group, threshold, cache, topics_of(key), last_use)
            )
            for key, (label, group) in sorted(labels.items())
        ]
        blocks.append(ThemeBlock(5, heading, len(theme_items), None, subthemes))

    stats = Stats(
        count=len(items),
        first=min(local_dates) if local_dates else None,
        last=max(local_dates) if local_dates else None,
        channels=_counted(Counter(CHANNELS.get(i.channel, i.channel) for i in items)),
        profiles=_counted(Counter(profile_of(i) for i in items)),
        languages=_counted(Counter(LANGUAGES.get(i.language, i.language) for i in items)),
        per_theme=[(f"thème {b.number}", b.count) for b in blocks],
    )
    annex = [
        AnnexRow(
            i.reference,
            d.isoformat(),
            _annex_theme(i),
            profile_of(i),
            LANGUAGES.get(i.language, i.language),
        )
        for i, d in zip(items, local_dates, strict=True)
    ]
    stamp = max((i.submitted_at for i in items), default=EPOCH).astimezone(UTC)
    stamp = stamp.replace(microsecond=0)
    if territory_code is None:
        title = TITLE.format(name=campaign.region) + " — synthèse régionale"
        situation = campaign.context or PLACEHOLDER_CONTEXT
        matrix = _matrix(campaign, items)
    else:
        territory = campaign.territory(territory_code)
        title = TITLE.format(name=territory.name)
        situation = territory.situation or PLACEHOLDER_SITUATION
        matrix = []
    return Report(
        title=title,
        is_region=territory_code is None,
        situation_heading=SITUATION,
        situation=situation,
        stats=stats,
        themes=blocks,
        perspectives=campaign.perspectives or PLACEHOLDER_PERSPECTIVES,
        annex=annex,
        stamp=stamp,
        matrix=matrix,
    )


def _matrix(campaign: CampaignData, items: Sequence[Item]) -> list[list[str]]:
    counts: Counter[tuple[str, int]] = Counter((i.territory, i.theme_number) for i in items)
    header = ["Territoire", "1", "2", "3", "4", "5", "Total"]
    rows = [header]
    for t in campaign.territories:
        values = [counts[(t.code, n)] for n in range(1, 6)]
        rows.append([t.name, *map(str, values), str(sum(values))])
    totals = [sum(counts[(t.code, n)] for t in campaign.territories) for n in range(1, 6)]
    rows.append(["Total", *map(str, totals), str(sum(totals))])
    return rows
