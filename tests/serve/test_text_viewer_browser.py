"""The study page of a note in a real browser (Debian's chromium through Playwright, against a
real ``medsight serve`` process): the de-identified note with its entities highlighted by
type, negated findings struck through and tagged "negated", uncertain ones marked, and the
labels table.

Two jobs: one written the way the service writes a finished text job (a `Job` row with a
`TextResult` whose every entity kind, assertion and label is known, the stored note and the
result's copy of it), and one sent through the route: the PHI canary note, posted as plain
text to a tiny trained ``text-classify`` run, de-identified by the service. The first note
carries a markup payload, which must show as text and never run; the second page must show
none of the canaries. Screenshots go to
``test-artifacts/viewer/``. Skipped with the reason where playwright or chromium is missing
(a failure under ``MEDSIGHT_REQUIRE_PEERS=1``), as the other viewer tests are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from service_kit import Tokens, make_users, register_models
from service_process import ServiceProcess, serve_args
from sqlalchemy import select
from test_viewer_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    log_in,
    new_context,
    require_browser,
    shot,
    watched,
)
from text_kit import CANARY_NOTE, TEXT_CANARIES, train_tiny_text_runs, write_fake_text_run

from medsight.serve.store.database import Database
from medsight.serve.store.schema import Job, User
from medsight.tasks.results import ModelIdentity, TextEntity, TextLabel, TextResult

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.slow, pytest.mark.external]  # a service and a browser

PAYLOAD = '<img src=x onerror="window.__xss=1">'
NOTE = (
    "Patient: Harold Smithson, MRN 00412993.\n"
    "FINDINGS: No pleural effusion. Possible small pneumothorax at the apex.\n"
    "A 6 mm nodule in the right upper lobe. Mother had lung cancer.\n"
    f"Comment: {PAYLOAD}\n"
    "IMPRESSION: Right upper lobe nodule.\n"
)


def _span(phrase: str, **fields: object) -> TextEntity:
    start = NOTE.index(phrase)
    return TextEntity(start=start, end=start + len(phrase), text=phrase, **fields)


ENTITIES = [
    _span(
        "pleural effusion",
        type="finding",
        concept="pleural_effusion",
        negation="negated",
        certainty="certain",
        section="findings",
    ),
    _span(
        "pneumothorax",
        type="finding",
        concept="pneumothorax",
        negation="affirmed",
        certainty="uncertain",
        section="findings",
    ),
    _span("6 mm", type="measurement", value_mm=6.0, section="findings"),
    _span(
        "nodule",
        type="finding",
        concept="lung_nodule_or_mass",
        negation="affirmed",
        certainty="certain",
        section="findings",
    ),
    _span("right upper lobe", type="anatomy", concept="right upper lobe", section="findings"),
    _span("lung cancer", type="finding", concept="lung_nodule_or_mass", experiencer="other"),
]
LABELS = {
    "finding:lung_nodule_or_mass": TextLabel(
        label="present", probability=0.91, probabilities={"present": 0.91, "absent": 0.09}
    ),
    "finding:pleural_effusion": TextLabel(
        label="absent", probability=0.84, probabilities={"present": 0.16, "absent": 0.84}
    ),
}


@dataclass
class Served:
    url: str
    tokens: Tokens
    job: str
    routed: str  # the canary note through the route and a trained run


def _finished_text_job(work: Path, db: Database, registry_sha: str) -> str:
    """A done ``text-classify`` job of the clinician's, as the service stores one."""
    job_id = str(uuid.uuid4())
    data = NOTE.encode()
    (work / "data" / "uploads" / job_id).mkdir(parents=True)
    (work / "data" / "uploads" / job_id / "note.txt").write_bytes(data)
    (work / "data" / "results" / job_id).mkdir(parents=True)
    (work / "data" / "results" / job_id / "note.txt").write_bytes(data)
    result = TextResult(
        task="text-classify",
        files=["note.txt"],
        labels=LABELS,
        entities=ENTITIES,
        sections=["findings", "impression"],
        deidentified=True,
        network="cnn",
        model=ModelIdentity(name="textcls", version="1", sha256=registry_sha),
        seconds=0.05,
    )
    with db.write() as session:
        user = session.execute(select(User).where(User.name == "clinician")).scalar_one()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        session.add(
            Job(
                id=job_id,
                user_id=user.id,
                model_name="textcls",
                model_version="1",
                model_sha256=registry_sha,
                input_kind="text",
                input_sha256=hashlib.sha256(data).hexdigest(),
                state="done",
                attempts=1,
                started=now,
                finished=now,
                result=result.to_json(),
            )
        )
        session.commit()
    return job_id


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_browser()
    work = tmp_path_factory.mktemp("text-viewer")
    registry = register_models(work / "registry", work / "runs")
    _, entry = registry.add(
        write_fake_text_run(work / "runs" / "textcls", "text-classify"), "textcls"
    )
    registry.add(train_tiny_text_runs(work / "train")["textcls"], "reports")
    database_url = f"sqlite:///{work}/medsight.db"
    db = Database(database_url)
    tokens = make_users(db, PASSWORD)
    process = ServiceProcess.start(work / "process", *serve_args(work, database_url))
    try:
        process.wait_healthy()
        job = _finished_text_job(work, db, entry["sha256"])
        db.close()
        with httpx.Client(base_url=process.url, timeout=60.0) as client:
            r = client.post(
                "/v1/predict/reports",
                content=CANARY_NOTE.encode(),
                headers={**tokens.header("clinician"), "Content-Type": "text/plain"},
            )
            assert r.status_code == 200, r.text
        yield Served(process.url, tokens, job, r.json()["job_id"])
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def clinician(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    context = new_context(browser)
    w = watched(context)
    log_in(served, w, "clinician")
    w.clean()
    w.page.close()
    yield context
    context.close()


#: the note's text as shown, less the assertion tags the page adds after entities
SHOWN_NOTE = """() => {
  const copy = document.getElementById('note-text').cloneNode(true);
  copy.querySelectorAll('.assertion-tag').forEach((t) => t.remove());
  return copy.textContent;
}"""


def test_a_note_shows_its_entities_negations_and_labels(
    clinician: BrowserContext, served: Served
) -> None:
    w = watched(clinician)
    page = w.page
    page.goto(f"{served.url}/viewer/study/{served.job}")
    page.wait_for_selector("#note-text[data-ready='true']")
    assert page.is_hidden("#viewport-column") and page.is_visible("#note-column")
    # the note reads as stored, the payload as text
    assert page.evaluate(SHOWN_NOTE) == NOTE
    marks = page.locator("#note-text mark.entity")
    assert marks.count() == len(ENTITIES)
    assert marks.all_text_contents() == [e.text for e in ENTITIES]
    types = [marks.nth(i).get_attribute("data-type") for i in range(marks.count())]
    assert types == [e.type for e in ENTITIES]
    # highlighted by type: the finding and the anatomy differ in colour
    colour = "(e) => getComputedStyle(e).backgroundColor"
    finding = page.locator("mark.entity-finding").first.evaluate(colour)
    anatomy = page.locator("mark.entity-anatomy").first.evaluate(colour)
    assert finding != anatomy and "rgba(0, 0, 0, 0)" not in (finding, anatomy)
    # the negated finding is struck through and tagged; the uncertain one marked and tagged
    negated = page.locator("mark.entity.negated")
    assert negated.count() == 1 and negated.text_content() == "pleural effusion"
    line = negated.evaluate("(e) => getComputedStyle(e).textDecorationLine")
    assert "line-through" in line
    assert negated.evaluate("(e) => e.nextElementSibling.textContent") == "negated"
    uncertain = page.locator("mark.entity.uncertain")
    assert uncertain.count() == 1 and uncertain.text_content() == "pneumothorax"
    assert uncertain.evaluate("(e) => e.nextElementSibling.textContent") == "uncertain"
    assert "line-through" not in uncertain.evaluate("(e) => getComputedStyle(e).textDecorationLine")
    tags = page.locator("#note-text .assertion-tag").all_text_contents()
    assert tags == ["negated", "uncertain", "family"]
    assert "value 6.0" not in (page.text_content("#note-text") or "")
    legend = page.locator("#note-legend [data-legend]").all_text_contents()
    assert legend == ["finding", "anatomy", "measurement"]
    # the labels table
    rows = page.locator("#text-labels tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").all_text_contents() == [
        "finding:lung_nodule_or_mass",
        "present",
        "91.0%",
    ]
    assert "6 entities" in (page.text_content("#entity-counts") or "")
    assert "1 negated" in (page.text_content("#entity-counts") or "")
    assert page.locator("#note-text img, #note-text script").count() == 0
    shot(page, "study-text.png")
    w.clean()
    w.page.close()


def test_the_worklist_sums_up_a_note(clinician: BrowserContext, served: Served) -> None:
    w = watched(clinician)
    page = w.page
    page.goto(f"{served.url}/viewer")
    page.wait_for_selector("#worklist-rows tr")
    summaries = page.locator("#worklist-rows td.summary").all_text_contents()
    assert len(summaries) == 2
    routed, written = summaries  # newest first
    assert "finding:lung_nodule_or_mass: present (91%)" in written
    assert "6 entities, 1 negated" in written
    assert re.match(r"finding:pleural_effusion: (present|absent) \(\d+%\)", routed), routed
    text = (page.text_content("#worklist") or "").lower()
    assert not [c for c in TEXT_CANARIES if c.lower() in text]
    w.clean()
    w.page.close()


def test_a_note_sent_through_the_route_shows_de_identified(
    clinician: BrowserContext, served: Served
) -> None:
    w = watched(clinician)
    page = w.page
    page.goto(f"{served.url}/viewer/study/{served.routed}")
    page.wait_for_selector("#note-text[data-ready='true']")
    shown = page.evaluate(SHOWN_NOTE)
    assert "FINDINGS: No pleural effusion." in shown
    content = page.content()
    assert not [c for c in TEXT_CANARIES if c.lower() in content.lower()]
    negated = page.locator("mark.entity.negated")
    assert "pleural effusion" in negated.all_text_contents()
    assert page.locator("#text-labels tbody tr").count() == 1
    assert "The note was de-identified before it was stored." in (
        page.text_content("#result-body") or ""
    )
    shot(page, "study-text-routed.png")
    w.clean()
    w.page.close()
