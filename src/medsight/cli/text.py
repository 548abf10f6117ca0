"""`medsight text assert|deid|analyze|label`: clinical text in; assertions, de-identified
text, analysed notes and report labels out. Each verb lives in its own module; this file only
groups them."""

from __future__ import annotations

import typer

from medsight.cli import text_analyze, text_assert, text_deid, text_label

app = typer.Typer(
    help="Clinical text: assertion context, de-identification, analysis, report labels."
)
app.command("assert")(text_assert.assert_)
app.command("deid")(text_deid.deid)
app.command("analyze")(text_analyze.analyze)
app.command("label")(text_label.label)
