"""Places typed by a citizen at the territory step: postal code, department, commune, territory.

Pure (no I/O): the reference data are constants below; the campaign's territories (with their
departments and the communes the campaign file lists) come in a :class:`CampaignView`.

:func:`resolve` turns what the citizen typed into a :class:`PlaceMatch`:

- a postal code (``59000``, ``59 000``, Corsican ``20000``/``20200``, overseas ``97400``) or a
  Corsican INSEE code (``2A004``, ``2B033``): first the communes the campaign lists with that
  exact postal code, else the department, which belongs to one territory (``"one"``), to several
  (``"several"``: the candidates), or to none (``"outside"``);
- a department number (``"59"``, ``"2A"``, ``"974"``) or name (``"Nord"``, ``"pas de calais"``);
- the name of a commune the campaign lists (``"bethune"`` is ``"Béthune"``);
- the name or code of a territory (``"littoral nord"``, ``"OISE"``).

Case, accents, hyphens, apostrophes, a leading article and "St"/"Ste" do not matter. Anything
else is ``"unknown"``; nothing typed ever raises.

Not departments, hence never in a campaign of departments, and answered ``"outside"`` with their
name: Saint-Pierre-et-Miquelon (975xx), Saint-Barthélemy (97133), Saint-Martin (97150),
Wallis-et-Futuna (986xx), Polynésie française (987xx), Nouvelle-Calédonie (988xx), Monaco (980xx).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from dialogs.model import CampaignView, Territory
from dialogs.validation import SHORT_INPUT_MAX_CHARS, one_line

Status = Literal["one", "several", "outside", "unknown"]

#: The 101 French departments: code -> name (INSEE codes; Corsica is 2A/2B).
DEPARTMENTS: Final[dict[str, str]] = {
    "01": "Ain",
    "02": "Aisne",
    "03": "Allier",
    "04": "Alpes-de-Haute-Provence",
    "05": "Hautes-Alpes",
    "06": "Alpes-Maritimes",
    "07": "Ardèche",
    "08": "Ardennes",
    "09": "Ariège",
    "10": "Aube",
    "11": "Aude",
    "12": "Aveyron",
    "13": "Bouches-du-Rhône",
    "14": "Calvados",
    "15": "Cantal",
    "16": "Charente",
    "17": "Charente-Maritime",
    "18": "Cher",
    "19": "Corrèze",
    "2A": "Corse-du-Sud",
    "2B": "Haute-Corse",
    "21": "Côte-d'Or",
    "22": "Côtes-d'Armor",
    "23": "Creuse",
    "24": "Dordogne",
    "25": "Doubs",
    "26": "Drôme",
    "27": "Eure",
    "28": "Eure-et-Loir",
    "29": "Finistère",
    "30": "Gard",
    "31": "Haute-Garonne",
    "32": "Gers",
    "33": "Gironde",
    "34": "Hérault",
    "35": "Ille-et-Vilaine",
    "36": "Indre",
    "37": "Indre-et-Loire",
    "38": "Isère",
    "39": "Jura",
    "40": "Landes",
    "41": "Loir-et-Cher",
    "42": "Loire",
    "43": "Haute-Loire",
    "44": "Loire-Atlantique",
    "45": "Loiret",
    "46": "Lot",
    "47": "Lot-et-Garonne",
    "48": "Lozère",
    "49": "Maine-et-Loire",
    "50": "Manche",
    "51": "Marne",
    "52": "Haute-Marne",
    "53": "Mayenne",
    "54": "Meurthe-et-Moselle",
    "55": "Meuse",
    "56": "Morbihan",
    "57": "Moselle",
    "58": "Nièvre",
    "59": "Nord",
    "60": "Oise",
    "61": "Orne",
    "62": "Pas-de-Calais",
    "63": "Puy-de-Dôme",
    "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées",
    "66": "Pyrénées-Orientales",
    "67": "Bas-Rhin",
    "68": "Haut-Rhin",
    "69": "Rhône",
    "70": "Haute-Saône",
    "71": "Saône-et-Loire",
    "72": "Sarthe",
    "73": "Savoie",
    "74": "Haute-Savoie",
    "75": "Paris",
    "76": "Seine-Maritime",
    "77": "Seine-et-Marne",
    "78": "Yvelines",
    "79": "Deux-Sèvres",
    "80": "Somme",
    "81": "Tarn",
    "82": "Tarn-et-Garonne",
    "83": "Var",
    "84": "Vaucluse",
    "85": "Vendée",
    "86": "Vienne",
    "87": "Haute-Vienne",
    "88": "Vosges",
    "89": "Yonne",
    "90": "Territoire de Belfort",
    "91": "Essonne",
    "92": "Hauts-de-Seine",
    "93": "Seine-Saint-Denis",
    "94": "Val-de-Marne",
    "95": "Val-d'Oise",
    "971": "Guadeloupe",
    "972": "Martinique",
    "973": "Guyane",
    "974": "La Réunion",
    "976": "Mayotte",
}

#: Other names citizens use for departments (folded like user input, see :func:`fold`).
DEPARTMENT_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "corse": ("2A", "2B"),
    "corsica": ("2A", "2B"),
    "corse sud": ("2A",),
    "guyane francaise": ("973",),
    "french guiana": ("973",),
    "reunion island": ("974",),
    "ile de la reunion": ("974",),
    "cotes du nord": ("22",),
    "belfort": ("90",),
}

#: French places with postal codes that are not departments: postal prefix -> name. Longest
#: prefix wins (97133 and 97150 share the 971 prefix of Guadeloupe).
NOT_DEPARTMENTS: Final[dict[str, str]] = {
    "975": "Saint-Pierre-et-Miquelon",
    "97133": "Saint-Barthélemy",
    "97150": "Saint-Martin",
    "977": "Saint-Barthélemy",
    "978": "Saint-Martin",
    "980": "Monaco",
    "986": "Wallis-et-Futuna",
    "987": "Polynésie française",
    "988": "Nouvelle-Calédonie",
}

#: Longer texts are not a place: answered "unknown" without further work.
MAX_INPUT_CHARS: Final = SHORT_INPUT_MAX_CHARS

_POSTAL_RE: Final = re.compile(r"^(?:[0-9]{2} ?[0-9]{3}|2[AB][0-9]{3})$", re.ASCII)
_POSTAL_IN_TEXT_RE: Final = re.compile(
    r"(?<![0-9A-Z])([0-9]{5}|2[AB][0-9]{3})(?![0-9A-Z])", re.ASCII
)
_DEPT_NUMBER_RE: Final = re.compile(r"^(?:[0-9]{2,3}|2[AB])$", re.ASCII)
_LEADING_WORDS: Final = frozenset(
    {"la", "le", "les", "l", "du", "de", "des", "d", "departement", "dept", "dep", "the"}
)
_ABBREVIATIONS: Final = {"st": "saint", "ste": "sainte"}


@dataclass(frozen=True)
class PlaceMatch:
    """What a typed place resolved to.

    ``territories`` holds the codes of the matching territories (one for ``"one"``, the
    candidates for ``"several"``, none otherwise); ``label`` is what was recognised, for
    showing back ("Lille (59000)", "Nord (59)"), empty when ``"unknown"``.
    """

    status: Status
    territories: tuple[str, ...] = ()
    label: str = ""


UNKNOWN: Final = PlaceMatch("unknown")


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation as single spaces, without a leading article.

    ``"L'Oise"`` -> ``"oise"``, ``"Pas-de-Calais"`` -> ``"pas de calais"``,
    ``"St-Omer"`` -> ``"saint omer"``.
    """
    text = unicodedata.normalize("NFKD", text.casefold())
    text = text.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = re.sub(r"[^0-9a-z]+", " ", text, flags=re.ASCII).split()
    while len(words) > 1 and words[0] in _LEADING_WORDS:
        words.pop(0)
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


#: :func:`fold` of the campaign's names (the same few hundred strings, folded once).
_fold_name = functools.lru_cache(maxsize=4096)(fold)


def department_of_postal_code(code: str) -> str | None:
    """The department of a postal code (``"59000"`` -> ``"59"``), or ``None``.

    Corsica: postal codes 20000-20199 are Corse-du-Sud (2A), 20200-20999 Haute-Corse (2B);
    Corsican INSEE commune codes (``"2A004"``, ``"2B033"``) give their department directly.
    Overseas departments: the first three digits (971 Guadeloupe ... 976 Mayotte). Places that
    are not departments (see :data:`NOT_DEPARTMENTS`) and impossible codes give ``None``.
    """
    code = code.strip().upper().replace(" ", "")
    if not re.fullmatch(r"[0-9]{5}|2[AB][0-9]{3}", code, flags=re.ASCII):
        return None
    if code.startswith(("2A", "2B")):
        return code[:2]
    if not_department(code) is not None:
        return None
    if code.startswith("97"):
        return code[:3] if code[:3] in DEPARTMENTS else None
    if code.startswith("20"):
        return "2A" if int(code) < 20200 else "2B"
    return code[:2] if code[:2] in DEPARTMENTS else None


def not_department(code: str) -> str | None:
    """The name of the non-department place a postal code belongs to, if any."""
    for length in (5, 3):
        name = NOT_DEPARTMENTS.get(code[:length])
        if name is not None:
            return name
    return None


def _territories_of_departments(campaign: CampaignView, codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t.code for t in campaign.territories if any(d in t.departments for d in codes))


def _by_departments(campaign: CampaignView, codes: tuple[str, ...], label: str) -> PlaceMatch:
    found = _territories_of_departments(campaign, codes)
    if not found:
        return PlaceMatch("outside", (), label)
    return PlaceMatch("one" if len(found) == 1 else "several", found, label)


def _department_label(code: str) -> str:
    return f"{DEPARTMENTS[code]} ({code})"


def _resolve_postal(code: str, campaign: CampaignView) -> PlaceMatch:
    code = code.replace(" ", "").upper()
    other = not_department(code) if not code.startswith("2") else None
    if other is not None:
        return PlaceMatch("outside", (), f"{other} ({code})")
    dept = department_of_postal_code(code)
    if dept is None:
        return UNKNOWN
    communes: list[tuple[Territory, str]] = [
        (t, c.name) for t in campaign.territories for c in t.communes if code in c.postal_codes
    ]
    if communes:
        codes = tuple(dict.fromkeys(t.code for t, _ in communes))
        names = list(dict.fromkeys(name for _, name in communes))
        label = f"{names[0]} ({code})" if len(names) == 1 else f"{code} ({DEPARTMENTS[dept]})"
        return PlaceMatch("one" if len(codes) == 1 else "several", codes, label)
    return _by_departments(campaign, (dept,), f"{code} ({DEPARTMENTS[dept]})")


def _resolve_department_number(token: str, campaign: CampaignView) -> PlaceMatch:
    code = token.upper()
    if code in DEPARTMENTS:
        return _by_departments(campaign, (code,), _department_label(code))
    if code in NOT_DEPARTMENTS:
        return PlaceMatch("outside", (), f"{NOT_DEPARTMENTS[code]} ({code})")
    return UNKNOWN


def _department_names() -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {fold(n): (c,) for c, n in DEPARTMENTS.items()}
    names.update(DEPARTMENT_ALIASES)
    return names


_DEPARTMENT_BY_NAME: Final = _department_names()
_NOT_DEPARTMENT_BY_NAME: Final = {fold(n): n for n in NOT_DEPARTMENTS.values()}


def _resolve_name(folded: str, campaign: CampaignView) -> PlaceMatch:
    # 1. a commune the campaign lists
    hits = [
        (t, c.name)
        for t in campaign.territories
        for c in t.communes
        if _fold_name(c.name) == folded
    ]
    if hits:
        codes = tuple(dict.fromkeys(t.code for t, _ in hits))
        return PlaceMatch("one" if len(codes) == 1 else "several", codes, hits[0][1])
    # 2. a territory, by name or code ("Oise" the territory wins over Oise the department)
    for t in campaign.territories:
        if folded in (_fold_name(t.name), _fold_name(t.code)):
            return PlaceMatch("one", (t.code,), t.name)
    # 3. a department
    depts = _DEPARTMENT_BY_NAME.get(folded)
    if depts is not None:
        label = ", ".join(_department_label(d) for d in depts)
        return _by_departments(campaign, depts, label)
    other = _NOT_DEPARTMENT_BY_NAME.get(folded)
    if other is not None:
        return PlaceMatch("outside", (), other)
    return UNKNOWN


def resolve(text: str, campaign: CampaignView) -> PlaceMatch:
    """Resolve what a citizen typed to the campaign's territories (see the module docstring)."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS * 4:
        return UNKNOWN
    cleaned = one_line(unicodedata.normalize("NFKC", text))  # NFKC: fullwidth digits
    if not cleaned or len(cleaned) > MAX_INPUT_CHARS:
        return UNKNOWN
    upper = cleaned.upper()
    if _POSTAL_RE.match(upper):
        return _resolve_postal(upper, campaign)
    if _DEPT_NUMBER_RE.match(upper):
        return _resolve_department_number(upper, campaign)
    folded = fold(cleaned)
    if folded:
        match = _resolve_name(folded, campaign)
        if match.status != "unknown":
            return match
    # A postal code inside a short text ("59000 Lille", "j'habite au 59000").
    found = list(dict.fromkeys(_POSTAL_IN_TEXT_RE.findall(upper)))
    if len(found) == 1:
        return _resolve_postal(found[0], campaign)
    return UNKNOWN
