"""The exporter: approved contributions as annex documents and data files.

``cnrbot export`` (``bot/commands/export.py``) runs :func:`exporter.run.run_export`, which writes
into the output directory, per territory ``<CAMPAIGN>_<TERRITORY>.<ext>`` and, with ``--region``,
the roll-up ``<CAMPAIGN>_REGION.<ext>``:

- ``.docx`` / ``.odt`` / ``.md``: the annex of the national instruction (``report.py`` holds its
  shape; ``docx.py``, ``odt.py``, ``markdown.py`` render it), near-duplicates grouped
  (``similarity.py``), optional bar chart (``charts.py``, ``.png`` next to the Markdown);
- ``.csv`` (UTF-8, comma, RFC 4180) and ``.json`` (``schema/contributions.schema.json``): one
  record per contribution with the columns of :data:`exporter.rows.COLUMNS`: reference,
  territory_code, territory, theme_number, theme_code, theme, supplementary_theme,
  submitted_at (UTC, ISO 8601), profile (code), language, channel, need, solution, levers,
  topic_id, topic (the contribution's topic within its theme and territory, ``topics.py``);
- ``.xlsx``: one workbook per territory, or with ``--region`` one regional workbook only: a
  summary sheet (counts per territory and theme) and one sheet per territory, CSV columns.

Only ``approved`` contributions are read, in their moderated form; every text also goes through
the personal-data mask of ``pii.py``. No participant key, chat id or identity is ever selected:
only the participant's opaque row number, to count distinct citizens per topic, never written.
Each theme of a territory's documents opens with « Principaux sujets » (``topics.py``).
Spreadsheet cells that would start a formula are neutralised with a leading quote.
"""
