"""Campaign files (TOML): the schema, validation with clear errors, and the dialog's view.

A campaign is data, not code: another region, or the 101 departments of France, is a new file.
The files shipped with the package live in ``storage/campaigns/``.

Every problem in a file is reported as a :class:`CampaignFileError` naming the file, the line
and the field (``territories[3].departments[0]``): TOML syntax errors carry their line from
``tomllib``; for validation errors the line of the offending key or value is found by
:class:`_Locator`, a small scanner of the (already parsed, hence valid) TOML text.
"""

from __future__ import annotations

import bisect
import contextlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dialogs.model import (
    DEFAULT_TIMEZONE,
    CampaignView,
    Commune,
    Controller,
    Profile,
    Territory,
    Theme,
)
from dialogs.places import DEPARTMENTS, department_of_postal_code

CAMPAIGNS_DIR = Path(__file__).parent / "campaigns"
#: Button labels (``short_*``) stay short enough for a phone screen.
SHORT_LABEL_MAX = 30
#: Campaign files larger than this are refused (a campaign of 101 departments is ~20 KB).
MAX_FILE_BYTES = 2_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommuneSpec(_Strict):
    name: str = Field(min_length=1)
    postal_codes: list[str] = Field(default_factory=list)


class TerritorySpec(_Strict):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,19}$")
    name: str = Field(min_length=1)
    departments: list[str] = Field(min_length=1)
    communes: list[CommuneSpec] = Field(default_factory=list)
    #: "La situation du territoire" (annex I); empty means a marked placeholder in exports.
    situation: str = ""


class ThemeSpec(_Strict):
    number: int = Field(ge=1, le=4)
    label_fr: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    short_fr: str = Field(default="", max_length=SHORT_LABEL_MAX)
    short_en: str = Field(default="", max_length=SHORT_LABEL_MAX)


class ExtraThemeSpec(_Strict):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$")
    label_fr: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    short_fr: str = Field(default="", max_length=SHORT_LABEL_MAX)
    short_en: str = Field(default="", max_length=SHORT_LABEL_MAX)


class SupplementarySpec(_Strict):
    label_fr: str = "Thématique(s) supplémentaire(s)"
    label_en: str = "Additional theme(s)"
    short_fr: str = Field(default="Autre thématique", max_length=SHORT_LABEL_MAX)
    short_en: str = Field(default="Another theme", max_length=SHORT_LABEL_MAX)
    #: Whether citizens may name their own theme (free text) under theme 5.
    allow_free_text: bool = True
    themes: list[ExtraThemeSpec] = Field(default_factory=list)


class ProfileSpec(_Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    label_fr: str = Field(min_length=1)
    label_en: str = Field(min_length=1)


class CampaignInfo(_Strict):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$")
    #: Prefix of references, e.g. "HDF" -> HDF-OISE-000042.
    ref_prefix: str = Field(pattern=r"^[A-Z0-9]{1,12}$")
    name: str = Field(min_length=1)
    region: str = Field(min_length=1)
    opens_on: date
    closes_on: date
    timezone: str = DEFAULT_TIMEZONE
    #: Regional context (annex I, regional roll-up); optional.
    context: str = ""
    #: "III - Perspectives" text for the exports; empty means a marked placeholder.
    perspectives: str = ""


class ControllerSpec(_Strict):
    """The data controller (the agency), named in the privacy notice and docs/privacy.md."""

    name: str = Field(min_length=1, max_length=200)
    #: Postal address (for the processing record; not shown in the chat).
    address: str = ""
    #: The data-protection officer's e-mail address or web page, shown in the notice.
    dpo_contact: str = Field(default="", max_length=200)


class CampaignSpec(_Strict):
    campaign: CampaignInfo
    controller: ControllerSpec | None = None
    territories: list[TerritorySpec] = Field(min_length=1)
    themes: list[ThemeSpec] = Field(min_length=4, max_length=4)
    supplementary: SupplementarySpec = SupplementarySpec()
    profiles: list[ProfileSpec] = Field(default_factory=list)

    def to_view(self) -> CampaignView:
        """The campaign as the dialog sees it."""
        info = self.campaign
        sup = self.supplementary
        themes = [
            Theme(str(t.number), t.number, t.label_fr, t.label_en, t.short_fr, t.short_en)
            for t in sorted(self.themes, key=lambda t: t.number)
        ]
        if sup.allow_free_text:
            themes.append(Theme("5", 5, sup.label_fr, sup.label_en, sup.short_fr, sup.short_en))
        return CampaignView(
            code=info.code,
            name=info.name,
            region=info.region,
            opens_on=info.opens_on,
            closes_on=info.closes_on,
            territories=tuple(
                Territory(
                    code=t.code,
                    name=t.name,
                    departments=tuple(t.departments),
                    communes=tuple(Commune(c.name, tuple(c.postal_codes)) for c in t.communes),
                )
                for t in self.territories
            ),
            themes=tuple(themes),
            extra_themes=tuple(
                Theme(e.code, 5, e.label_fr, e.label_en, e.short_fr, e.short_en) for e in sup.themes
            ),
            profiles=tuple(Profile(p.code, p.label_fr, p.label_en) for p in self.profiles),
            timezone=info.timezone,
            controller=(
                Controller(self.controller.name, self.controller.dpo_contact)
                if self.controller
                else None
            ),
        )


# --- errors -----------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One problem in a campaign file: where (line, field path) and what."""

    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else ""
        if self.path:
            where = f"{where}, {self.path}" if where else self.path
        return f"{where}: {self.message}" if where else self.message


class CampaignFileError(ValueError):
    """An unreadable or invalid campaign file. ``str()`` names the file, line(s) and field(s)."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems) or [Problem(None, "", "invalid campaign file")]
        first = self.problems[0]
        #: Line and field path of the first problem (``None``/"" when not applicable).
        self.line = first.line
        self.path = first.path
        if len(self.problems) == 1:
            text = f"{source}, {first}"
        else:
            shown = self.problems[:_MAX_PROBLEMS_SHOWN]
            text = f"{source}: {len(self.problems)} problems\n" + "\n".join(
                f"  {source}, {p}" for p in shown
            )
            if len(self.problems) > len(shown):
                text += f"\n  ... and {len(self.problems) - len(shown)} more"
        super().__init__(text)


_MAX_PROBLEMS_SHOWN = 20


def format_path(loc: Loc) -> str:
    """``("territories", 3, "departments", 0)`` -> ``"territories[3].departments[0]"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --- locating keys and values in the TOML text ----------------------------------------------


@dataclass
class _Node:
    line: int
    children: dict[str | int, _Node] = field(default_factory=dict)


class _Locator:
    """Maps field paths (``("territories", 3, "code")``) to line numbers of a TOML text.

    The text has been parsed by ``tomllib`` already, so it is valid TOML; this scanner only
    notes where each table, key and array element starts. Best effort: on anything it does not
    follow it stops, and lookups fall back to the nearest enclosing item it saw.
    """

    _BARE = re.compile(r"[A-Za-z0-9_-]+")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.root = _Node(1)
        #: Line of the first key defined twice (tomllib reports it "at end of document").
        self.duplicate_line: int | None = None
        with contextlib.suppress(IndexError, ValueError, KeyError, RecursionError):
            self._document()

    def line_of(self, loc: Loc) -> int:
        node = self.root
        for part in loc:
            child = node.children.get(part)
            if child is None:
                break
            node = child
        return node.line

    # -- scanning --

    def _line(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos)

    def _peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def _skip(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.pos += 1
            elif ch == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        current = self.root
        while True:
            self._skip(newlines=True)
            if self.pos >= len(self.text):
                return
            line = self._line(self.pos)
            if self._peek(2) == "[[":
                self.pos += 2
                keys = self._key()
                self._expect("]]")
                parent = self._walk(self.root, keys[:-1], line)
                array = parent.children.setdefault(keys[-1], _Node(line))
                index = len(array.children)
                current = array.children[index] = _Node(line)
            elif self._peek() == "[":
                self.pos += 1
                keys = self._key()
                self._expect("]")
                current = self._walk(self.root, keys, line)
                current.line = line
            else:
                self._key_value(current)

    def _walk(self, node: _Node, keys: list[str], line: int) -> _Node:
        """The table at ``keys`` under ``node`` (the last element of an array of tables)."""
        for key in keys:
            node = node.children.setdefault(key, _Node(line))
            if node.children and all(isinstance(k, int) for k in node.children):
                node = node.children[max(k for k in node.children if isinstance(k, int))]
        return node

    def _expect(self, token: str) -> None:
        self._skip(newlines=False)
        if not self.text.startswith(token, self.pos):
            raise ValueError(token)
        self.pos += len(token)

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip(newlines=False)
            ch = self._peek()
            if ch in "\"'":
                start = self.pos
                self._string()
                keys.append(tomllib.loads(f"k = {self.text[start : self.pos]}")["k"])
            else:
                match = self._BARE.match(self.text, self.pos)
                if match is None:
                    raise ValueError("key")
                keys.append(match.group())
                self.pos = match.end()
            self._skip(newlines=False)
            if self._peek() != ".":
                return keys
            self.pos += 1

    def _key_value(self, table: _Node) -> None:
        line = self._line(self.pos)
        keys = self._key()
        self._expect("=")
        parent = self._walk(table, keys[:-1], line)
        if keys[-1] in parent.children and self.duplicate_line is None:
            self.duplicate_line = line
        node = parent.children[keys[-1]] = _Node(line)
        self._skip(newlines=False)
        self._value(node)

    def _value(self, node: _Node) -> None:
        ch = self._peek()
        if ch == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek() == "]":
                    self.pos += 1
                    return
                child = node.children[index] = _Node(self._line(self.pos))
                self._value(child)
                index += 1
                self._skip(newlines=True)
                if self._peek() == ",":
                    self.pos += 1
        elif ch == "{":
            self.pos += 1
            while True:
                self._skip(newlines=False)
                if self._peek() == "}":
                    self.pos += 1
                    return
                self._key_value(node)
                self._skip(newlines=False)
                if self._peek() == ",":
                    self.pos += 1
        elif ch in "\"'":
            self._string()
        else:
            match = re.compile(r"[^,\]}\r\n#]*").match(self.text, self.pos)
            if match is None or match.end() == self.pos:
                raise ValueError("value")
            self.pos = match.end()

    def _string(self) -> None:
        text = self.text
        for quote in ('"""', "'''", '"', "'"):
            if text.startswith(quote, self.pos):
                break
        self.pos += len(quote)
        while True:
            if quote[0] == '"' and text[self.pos] == "\\":
                self.pos += 2
                continue
            if text.startswith(quote, self.pos):
                self.pos += len(quote)
                # a multi-line string may end with one or two extra quotes: """a"""""
                while len(quote) == 3 and self._peek() == quote[0]:
                    self.pos += 1
                return
            if len(quote) == 1 and text[self.pos] == "\n":
                raise ValueError("string")
            self.pos += 1


# --- reading and checking -----------------------------------------------------------------


def parse_campaign_text(text: str, source_name: str) -> CampaignSpec:
    """Parse and check a campaign file's text; raise :class:`CampaignFileError` when invalid."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignFileError(source_name, [_syntax_problem(exc, text)]) from None
    except RecursionError:
        problem = Problem(None, "", "TOML syntax error: arrays or tables nested too deeply")
        raise CampaignFileError(source_name, [problem]) from None
    locator: _Locator | None = None

    def locate() -> _Locator:
        nonlocal locator
        if locator is None:
            locator = _Locator(text)
        return locator

    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(
                locate().line_of(tuple(err["loc"])),
                format_path(tuple(err["loc"])),
                _describe(err),
            )
            for err in exc.errors(include_url=False)
        ]
        raise CampaignFileError(source_name, problems) from None
    issues = check_campaign(spec)
    if issues:
        problems = [Problem(locate().line_of(loc), format_path(loc), msg) for loc, msg in issues]
        raise CampaignFileError(source_name, problems)
    return spec


def read_campaign_file(path: str | Path) -> CampaignSpec:
    """Read, parse and check a campaign file; raise :class:`CampaignFileError` when it cannot
    be read or is invalid."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        problem = Problem(None, "", f"cannot read the file: {reason}")
        raise CampaignFileError(source, [problem]) from exc
    if len(raw) > MAX_FILE_BYTES:
        message = f"file too large (over {MAX_FILE_BYTES:,} bytes)"
        raise CampaignFileError(source, [Problem(None, "", message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = "not UTF-8 text (save the file as UTF-8)"
        raise CampaignFileError(source, [Problem(line, "", message)]) from None
    return parse_campaign_text(text, source)


def builtin_campaigns() -> list[str]:
    """Names of the campaign files shipped in ``storage/campaigns/``."""
    return sorted(p.name for p in CAMPAIGNS_DIR.glob("*.toml"))


def builtin_campaign_path(name: str) -> Path:
    """The shipped campaign file ``name`` (``"hauts-de-france-2022"``, with or without
    ``.toml``); :class:`CampaignFileError` listing the available ones when there is none."""
    clean = name.strip()
    if not clean.endswith(".toml"):
        clean += ".toml"
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.toml", clean, flags=re.ASCII):
        path = CAMPAIGNS_DIR / clean
        if path.is_file():
            return path
    available = ", ".join(n.removesuffix(".toml") for n in builtin_campaigns())
    message = f"no campaign file of that name is shipped (available: {available})"
    raise CampaignFileError(repr(name[:80]), [Problem(None, "", message)])


_SYNTAX_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> Problem:
    message = str(exc)
    match = _SYNTAX_LINE.search(message)
    line: int | None = getattr(exc, "lineno", None)
    if match:
        line = int(match.group(1))
        message = message[: match.start()].rstrip()
    elif "at end of document" in message:
        message = message.replace("(at end of document)", "").rstrip()
        line = _Locator(text).duplicate_line
        if line is None:
            line = text.count("\n") + 1
    return Problem(line, "", f"TOML syntax error: {message}")


def _describe(err: Any) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind == "missing":
        return "missing field (required)"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling; see storage/campaigns/*.toml for examples)"
    value = err.get("input")
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return f'{msg} (got {value}: write it in quotes, "{value}")'
    if isinstance(value, str | int | float | bool | date):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{msg} (got {shown})"
    if value is not None and not isinstance(value, dict):
        return f"{msg} (got a {type(value).__name__})"
    return msg


def _duplicates(values: Sequence[str]) -> list[int]:
    seen: set[str] = set()
    out: list[int] = []
    for i, value in enumerate(values):
        if value in seen:
            out.append(i)
        seen.add(value)
    return out


def check_campaign(spec: CampaignSpec) -> list[tuple[Loc, str]]:
    """Checks across fields that the schema alone cannot express: (field path, message)."""
    issues: list[tuple[Loc, str]] = []
    info = spec.campaign
    if info.closes_on < info.opens_on:
        issues.append(
            (
                ("campaign", "closes_on"),
                f"the closing date {info.closes_on} is before the opening date {info.opens_on}",
            )
        )
    try:
        ZoneInfo(info.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        issues.append((("campaign", "timezone"), f"unknown time zone {info.timezone!r}"))

    for i in _duplicates([t.code for t in spec.territories]):
        issues.append(
            (("territories", i, "code"), f"territory code {spec.territories[i].code!r} repeated")
        )
    for i, territory in enumerate(spec.territories):
        for j in _duplicates(territory.departments):
            issues.append(
                (("territories", i, "departments", j), "department listed twice in this territory")
            )
        for j, dept in enumerate(territory.departments):
            if dept not in DEPARTMENTS:
                issues.append(
                    (
                        ("territories", i, "departments", j),
                        f"{dept!r} is not a French department code"
                        ' (01 to 95 without 20, 2A, 2B, 971 to 974, 976; as text, e.g. "02")',
                    )
                )
        if not set(territory.departments) <= DEPARTMENTS.keys():
            continue  # postal codes are checked against valid departments only
        for j, commune in enumerate(territory.communes):
            for k, code in enumerate(commune.postal_codes):
                loc: Loc = ("territories", i, "communes", j, "postal_codes", k)
                dept_of_code = department_of_postal_code(code) if len(code) == 5 else None
                if not re.fullmatch(r"[0-9]{5}", code, flags=re.ASCII) or dept_of_code is None:
                    issues.append((loc, f"{code!r} is not a French postal code (5 digits)"))
                elif dept_of_code not in territory.departments:
                    issues.append(
                        (
                            loc,
                            f"postal code {code} is in department {dept_of_code}, which is not"
                            f" among this territory's departments {territory.departments}",
                        )
                    )

    numbers = [t.number for t in spec.themes]
    for i in _duplicates([str(n) for n in numbers]):
        issues.append((("themes", i, "number"), f"theme number {numbers[i]} repeated"))
    if sorted(numbers) != [1, 2, 3, 4] and not _duplicates([str(n) for n in numbers]):
        issues.append((("themes",), "the themes must be numbered 1, 2, 3 and 4"))

    extra = spec.supplementary.themes
    for i in _duplicates([e.code for e in extra]):
        issues.append(
            (
                ("supplementary", "themes", i, "code"),
                f"extra theme code {extra[i].code!r} repeated",
            )
        )
    for i, e in enumerate(extra):
        if e.code.isdigit():
            issues.append(
                (
                    ("supplementary", "themes", i, "code"),
                    "an extra theme code must not be a number (1 to 5 are the annex's themes)",
                )
            )
    for i in _duplicates([p.code for p in spec.profiles]):
        issues.append((("profiles", i, "code"), f"profile code {spec.profiles[i].code!r} repeated"))
    return issues
