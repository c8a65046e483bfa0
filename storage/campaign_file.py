"""Campaign files (TOML): the schema, validation with clear errors, and the dialog's view.

A campaign is data, not code: another region, or the 101 departments of France, is a new file.
The files shipped with the package live in ``storage/campaigns/``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dialogs.model import CampaignView, Commune, Profile, Territory, Theme

CAMPAIGNS_DIR = Path(__file__).parent / "campaigns"


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
    short_fr: str = ""
    short_en: str = ""


class ExtraThemeSpec(_Strict):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$")
    label_fr: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    short_fr: str = ""
    short_en: str = ""


class SupplementarySpec(_Strict):
    label_fr: str = "Thématique(s) supplémentaire(s)"
    label_en: str = "Additional theme(s)"
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
    timezone: str = "Europe/Paris"
    #: Regional context (annex I, regional roll-up); optional.
    context: str = ""
    #: "III - Perspectives" text for the exports; empty means a marked placeholder.
    perspectives: str = ""


class CampaignSpec(_Strict):
    campaign: CampaignInfo
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
            themes.append(Theme("5", 5, sup.label_fr, sup.label_en))
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
                Theme(e.code, 5, e.label_fr, e.label_en, e.short_fr, e.short_en)
                for e in sup.themes
            ),
            profiles=tuple(Profile(p.code, p.label_fr, p.label_en) for p in self.profiles),
        )
