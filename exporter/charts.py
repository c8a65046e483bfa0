"""Bar charts for the documents (``--charts``; needs the optional extra ``charts``:
``pip install 'cnr-sante-bot[charts]'``, i.e. matplotlib).

PNG output carries no date or software version, so the same data gives the same image.
"""

from __future__ import annotations

import io

from exporter.report import Report
from exporter.source import ExportError

MISSING = (
    "--charts needs matplotlib: install the optional extra "
    "(pip install 'cnr-sante-bot[charts]') or run again without --charts"
)


def check_available() -> None:
    """Raise :class:`ExportError` with an install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ExportError(MISSING) from exc


def theme_chart(report: Report) -> bytes:
    """Contributions per theme (territory), or per territory x theme (regional roll-up)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    themes = [str(b.number) for b in report.themes]
    if report.is_region and len(report.matrix) > 2:
        territories = report.matrix[1:-1]
        width = 0.8 / max(len(territories), 1)
        for idx, row in enumerate(territories):
            values = [int(v) for v in row[1:6]]
            xs = [n + idx * width for n in range(len(themes))]
            ax.bar(xs, values, width=width, label=row[0])
        ax.set_xticks([n + 0.4 - width / 2 for n in range(len(themes))], themes)
        ax.legend(fontsize="small", ncols=2)
        ax.set_title("Contributions par territoire et par thématique")
    else:
        ax.bar(themes, [b.count for b in report.themes], color="#3b6ea5")
        ax.set_title("Contributions par thématique")
    ax.set_xlabel("Thématique (annexe, partie II)")
    ax.set_ylabel("Contributions approuvées")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
