"""What the dialog service's tests share: the test campaign, the clock and the texts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

#: The small test campaign (territories OISE and NORD, open on NOW).
TEST_TOML = Path(__file__).parent / "data" / "test-campaign.toml"
NOW = datetime(2022, 11, 20, 9, 30, tzinfo=UTC)
NEED = "Il n'y a plus de médecin traitant dans mon village depuis deux ans."
SOLUTION = "Ouvrir un centre de santé avec des médecins salariés par la commune."
LEVERS = "Former et recruter davantage de médecins dans le territoire."
