"""The viewer in a real browser: Debian's chromium (Playwright) against a real service process.

One ``medsight serve`` process on a free loopback port, with finished jobs submitted through
the API: a segmentation (model with a model card), a classification with a heatmap and a
study that "came over DICOM" whose patient name, ID and series description are script and
markup payloads (a `DicomSeries` row sealed with the service's key, as the DICOM node writes
it). The tests log in through the form, drive the slice viewer with the mouse and keys, and
look at the canvas pixels. Every page also records Content-Security-Policy violations (an
init script, which the CSP does not govern) and dialogs: both must stay empty.

Screenshots go to ``test-artifacts/viewer/`` at the repository root. Where playwright or
/usr/bin/chromium is missing the module is skipped with the reason, unless
``MEDSIGHT_REQUIRE_PEERS=1`` (CI) makes that a failure. Never ``playwright install``: it
downloads a browser, and the Debian one is what is tested.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from ehr_kit import EHR_CANARIES, canary_bundle, train_tiny_risk_run
from service_kit import Tokens, ct_series_bytes, make_users, register_models, upload
from service_process import ServiceProcess, serve_args

from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import record_key, seal
from medsight.serve.store.schema import DicomSeries, Job

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.slow, pytest.mark.external]  # a service and a browser: tens of seconds

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_ENV = "MEDSIGHT_REQUIRE_PEERS"
PASSWORD = "correct horse battery"  # service_kit.make_users's default
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "viewer"
XSS = {
    "PatientName": "<script>alert(1)</script>",
    "PatientID": '"><svg onload=alert(3)>',
    "StudyDate": "20260103",
    "SeriesDescription": '<img src=x onerror="alert(2);window.__xss=1">',
    "Modality": "CT",
}
PLAIN = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0042",
    "StudyDate": "20260102",
    "SeriesDescription": "CT chest 1 mm",
    "Modality": "CT",
}
MODEL_CARD = (
    "# seg3d\n\nIntended use: <b>research</b> only.\n<script>alert('card')</script>\n\n"
    "## Limitations\n\n- synthetic <i>phantoms</i> only\n- one protocol\n\n"
    "| metric | value |\n|---|---|\n| dice | 0.91 |\n| <img src=x onerror=alert(4)> | a \\| b |\n"
)
#: records CSP violations and any payload that ran, before the page's own scripts
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""
CANVAS_PIXELS = "() => document.getElementById('slice-canvas').toDataURL()"
#: canvas pixels of a saturated warm colour (red to yellow): none on a grey CT
WARM_PIXELS = """() => {
  const c = document.getElementById('slice-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i] - d[i + 2] > 120) n++;
  return n;
}"""
#: the slice at zoom 1 fills the viewport's width or its height, whichever binds first
CANVAS_FITS = """() => {
  const c = document.getElementById('slice-canvas').getBoundingClientRect();
  const v = document.getElementById('viewport');
  return Math.abs(c.width - v.clientWidth) <= 1 || Math.abs(c.height - v.clientHeight) <= 1;
}"""


def require_browser() -> None:
    """Skip (or fail, under ``MEDSIGHT_REQUIRE_PEERS=1``) where the browser cannot run."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright; never `playwright install`)")
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian package chromium; `make system-deps`)")
    if not missing:
        return
    reason = f"not installed: {', '.join(missing)}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(f"viewer browser tests skipped: {reason}")


@dataclass
class Served:
    url: str
    tokens: Tokens
    database_url: str
    seg: str  # segmentation by the clinician, model with a card
    cls: str  # classification with heatmap by the clinician
    xss: str  # a "DICOM node" study (service account) with payloads in its labels
    deid_key: str
    risk: str = ""  # an EHR risk of the canary patient's FHIR Bundle (a trained tiny run)


def _submit(client: httpx.Client, tokens: Tokens, role: str, model: str, files: list) -> str:
    r = client.post(f"/v1/predict/{model}", files=files, headers=tokens.header(role))
    assert r.status_code in (200, 202), r.text
    job_id = str(r.json()["job_id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}", headers=tokens.header(role)).json()
        if body["state"] in ("done", "failed"):
            assert body["state"] == "done", body
            return job_id
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _add_series(db: Database, key: str, labels: dict[str, str], job_id: str | None) -> None:
    with db.write() as session:
        session.add(
            DicomSeries(
                series_key=uuid.uuid4().hex,
                calling_ae="CT_SCANNER",
                client="127.0.0.1",
                state="queued" if job_id else "receiving",
                modality="CT",
                instances=12,
                job_id=job_id,
                display=seal(labels, record_key(key)),
            )
        )
        session.commit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_browser()
    work = tmp_path_factory.mktemp("viewer-browser")
    registry = register_models(work / "registry", work / "runs")
    (work / "runs" / "seg3d" / "model_card.md").write_text(MODEL_CARD)
    registry.add(work / "runs" / "seg3d", "seg3dcard")
    registry.add(train_tiny_risk_run(work / "ehr"), "risk")
    database_url = f"sqlite:///{work}/medsight.db"
    db = Database(database_url)
    tokens = make_users(db, PASSWORD)
    process = ServiceProcess.start(work / "process", *serve_args(work, database_url))
    url = process.url
    try:
        process.wait_healthy()
        series = ct_series_bytes(work, slices=16)
        with httpx.Client(base_url=url, timeout=60.0) as client:
            seg = _submit(client, tokens, "clinician", "seg3dcard", upload(series))
            cls = _submit(client, tokens, "clinician", "cls3d", upload(series))
            xss = _submit(client, tokens, "service", "cls3d", upload(series))
            r = client.post(
                "/v1/predict/risk",
                json=canary_bundle(),
                headers={**tokens.header("clinician"), "Content-Type": "application/fhir+json"},
            )
            assert r.status_code == 200, r.text
            risk = r.json()["job_id"]
        key = (work / "data" / "deid.key").read_text().strip()
        _add_series(db, key, XSS, xss)
        _add_series(db, key, PLAIN, None)  # a series still arriving
        _add_series(db, key, XSS, None)
        # the tiny test models are not calibrated: give the classification the conformal set
        # of an unsure one, so the panel's abstention is shown
        with db.write() as session:
            job = session.get(Job, cls)
            assert job is not None and job.result is not None
            job.result = {**job.result, "conformal_set": ["benign", "malignant"], "refer": True}
            session.commit()
        db.close()
        yield Served(url, tokens, database_url, seg, cls, xss, key, risk)
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


@dataclass
class Watched:
    """A page with the dialogs it opened (there must be none)."""

    page: Page
    dialogs: list[str]

    def clean(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.page.evaluate("() => window.__csp") == [], "CSP violations"
        assert self.page.evaluate("() => window.__xss") is None, "a payload ran"


def watched(context: BrowserContext) -> Watched:
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return Watched(page, dialogs)


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    context.add_init_script(WATCH)
    return context


def log_in(served: Served, w: Watched, name: str, start: str = "/viewer") -> None:
    """Open ``start`` logged out, land on the form, log in, and come back to ``start``."""
    page = w.page
    page.goto(served.url + start)
    page.wait_for_url("**/viewer/login?next=*")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(served.url + start)


@pytest.fixture(scope="module")
def clinician(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    """A browser context logged in as the clinician through the form."""
    context = new_context(browser)
    w = watched(context)
    log_in(served, w, "clinician")
    w.clean()
    w.page.close()
    yield context
    context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def open_study(served: Served, context: BrowserContext, job_id: str) -> Watched:
    w = watched(context)
    w.page.goto(f"{served.url}/viewer/study/{job_id}")
    w.page.wait_for_selector("#slice-canvas[data-ready='true']")
    return w


def rounded_volumes(text: str) -> bool:
    """Whether ``text`` shows volumes, each in mL to 0.1 mL (0.01 mL under 1 mL)."""
    volumes = re.findall(r"(\d+(?:\.\d+)?)\s*m[lL]\b", text)
    return (
        bool(volumes)
        and all(re.fullmatch(r"\d+\.\d{2}" if float(v) < 1 else r"\d+\.\d", v) for v in volumes)
        and " ml" not in text
    )


def slice_of(page: Page) -> int:
    return int(page.input_value("#slice-slider"))


# ---------------------------------------------------------------- tests


def test_login_form_refuses_a_wrong_password_and_opens_the_worklist(
    browser: Browser, served: Served
) -> None:
    context = new_context(browser)
    w = watched(context)
    page = w.page
    page.goto(f"{served.url}/viewer")
    page.wait_for_url("**/viewer/login?next=%2Fviewer")
    page.fill("#login-name", "admin")
    page.fill("#login-password", "wrong horse battery")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not([hidden])")
    assert page.text_content("#login-error") == "Wrong user name or password."
    assert "login" in page.url
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{served.url}/viewer")
    page.wait_for_selector("#worklist-rows tr")
    rows = page.locator("#worklist-rows tr")
    # 3 image jobs, 1 EHR record and 2 arriving series (the admin sees all)
    assert rows.count() == 6
    states = [rows.nth(i).get_attribute("data-state") for i in range(rows.count())]
    assert sorted(states) == ["done", "done", "done", "done", "received", "received"]
    text = page.text_content("#worklist") or ""
    assert re.search(r"risk \d+%", text), text  # the record's row shows its risk ...
    assert not [c for c in EHR_CANARIES if c in text]  # ... and nothing of its patient
    assert XSS["PatientName"] in text and XSS["SeriesDescription"] in text
    assert "seg3dcard:1" in text and "cls3d:1" in text and "Jane, Doe" not in text
    assert "Doe, Jane" in text
    assert page.locator("#worklist img, #worklist svg, #worklist script").count() == 0
    summaries = page.locator("#worklist-rows td.summary").all_text_contents()
    assert rounded_volumes(" ".join(summaries)), summaries
    received = page.locator("#worklist-rows td.time").all_text_contents()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", t) for t in received), received
    shot(page, "worklist.png")
    # the list refreshes by itself: a series that starts arriving now shows up
    assert "refreshes every 10 s" in (page.text_content("#worklist-updated") or "")
    db = Database(served.database_url)
    _add_series(db, served.deid_key, {**PLAIN, "PatientName": "New^Arrival"}, None)
    db.close()
    page.wait_for_function(
        "() => document.querySelectorAll('#worklist-rows tr').length == 7", timeout=15_000
    )
    assert "New, Arrival" in (page.text_content("#worklist-rows tr:first-child") or "")
    w.clean()
    context.close()


def test_clicking_a_nodule_jumps_to_its_slice_and_the_mask_overlay_draws(
    clinician: BrowserContext, served: Served
) -> None:
    w = open_study(served, clinician, served.seg)
    page = w.page
    assert slice_of(page) == 8  # the middle of 16 slices
    # an upload has no patient labels; the header says what the service knows instead
    assert page.text_content("#study-title") == "Uploaded study (de-identified)"
    assert page.text_content("#label-model") == "seg3dcard:1"
    assert page.text_content("#label-task") == "segment"
    assert (page.text_content("#label-image") or "").startswith("16 slices × ")
    assert page.text_content("#label-job") == served.seg
    buttons = page.locator("button.component[data-structure='nodule']")
    assert buttons.count() > 0
    slices = [int(buttons.nth(i).get_attribute("data-slice") or -1) for i in range(buttons.count())]
    target = next(i for i, s in enumerate(slices) if s != 8)
    buttons.nth(target).click()
    assert slice_of(page) == slices[target]
    assert page.get_attribute("#slice-canvas", "data-slice") == str(slices[target])
    assert page.is_checked("#show-mask")  # picking a nodule shows the mask
    with_mask = page.evaluate(CANVAS_PIXELS)
    shot(page, "study-mask.png")
    page.uncheck("#show-mask")
    without = page.evaluate(CANVAS_PIXELS)
    assert without != with_mask
    page.check("#show-mask")
    assert page.evaluate(CANVAS_PIXELS) == with_mask
    # the panel: structures with volumes in mL to 0.1 mL (0.01 mL under 1 mL)
    panel = page.text_content("#result-panel") or ""
    assert "lung" in panel and "nodule" in panel
    assert rounded_volumes(panel)
    # the model card: headings, list and table built as nodes; any markup in it stays text
    card = page.locator("#model-card")
    assert card.locator("h3").all_text_contents() == ["seg3d"]
    assert card.locator("h4").all_text_contents() == ["Limitations"]
    assert card.locator("p").first.text_content() == (
        "Intended use: <b>research</b> only. <script>alert('card')</script>"
    )
    assert card.locator("li").all_text_contents() == [
        "synthetic <i>phantoms</i> only",
        "one protocol",
    ]
    assert card.locator("th").all_text_contents() == ["metric", "value"]
    assert card.locator("td").all_text_contents() == [
        "dice",
        "0.91",
        "<img src=x onerror=alert(4)>",
        "a | b",
    ]
    assert card.locator("b, i, img, script").count() == 0
    assert page.is_disabled("#show-heatmap")  # a segmentation has no heatmap
    w.clean()
    w.page.close()


def test_wheel_keys_slider_window_and_zoom(clinician: BrowserContext, served: Served) -> None:
    w = open_study(served, clinician, served.seg)
    page = w.page
    assert page.evaluate(CANVAS_FITS)
    start = slice_of(page)
    page.locator("#slice-canvas").hover()
    page.mouse.wheel(0, 120)
    page.wait_for_function(f"() => document.getElementById('slice-slider').value == {start + 1}")
    page.locator("#slice-canvas").focus()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert slice_of(page) == start - 1
    page.keyboard.press("PageDown")
    assert slice_of(page) == start - 1 + 2  # a tenth of 16 slices, rounded
    page.keyboard.press("End")
    assert slice_of(page) == 15
    page.fill("#slice-slider", "3")
    assert page.get_attribute("#slice-canvas", "data-slice") == "3"
    assert page.text_content("#slice-index") == "4 / 16"
    # window presets change the picture and say which is on
    lung = page.evaluate(CANVAS_PIXELS)
    page.click("button[data-preset='mediastinum']")
    assert page.get_attribute("button[data-preset='mediastinum']", "aria-pressed") == "true"
    assert page.text_content("#window-value") == "W 350 / L 50"
    assert page.evaluate(CANVAS_PIXELS) != lung
    page.click("button[data-preset='bone']")
    assert page.text_content("#window-value") == "W 1800 / L 400"
    page.click("button[data-preset='lung']")
    assert page.evaluate(CANVAS_PIXELS) == lung
    # zoom: buttons, +/- keys, ctrl+wheel
    width = page.evaluate("() => document.getElementById('slice-canvas').width")
    page.click("#zoom-in")
    assert page.evaluate("() => document.getElementById('slice-canvas').width") > width
    page.locator("#slice-canvas").focus()
    page.keyboard.press("0")
    assert page.evaluate("() => document.getElementById('slice-canvas').width") == width
    page.keyboard.press("-")
    assert page.text_content("#zoom-value") == "80%"
    page.keyboard.press("0")
    page.locator("#slice-canvas").hover()  # the clicks above moved the mouse off it
    page.keyboard.down("Control")
    page.mouse.wheel(0, -120)
    page.keyboard.up("Control")
    page.wait_for_function("() => document.getElementById('zoom-value').textContent == '125%'")
    assert slice_of(page) == 3  # ctrl+wheel zooms, it does not scroll
    w.clean()
    w.page.close()


def test_heatmap_overlay_probabilities_and_abstention(
    clinician: BrowserContext, served: Served
) -> None:
    w = open_study(served, clinician, served.cls)
    page = w.page
    assert page.is_disabled("#show-mask") and page.is_enabled("#show-heatmap")
    before = page.evaluate(CANVAS_PIXELS)
    assert page.evaluate(WARM_PIXELS) == 0
    page.check("#show-heatmap")
    with_heat = page.evaluate(CANVAS_PIXELS)
    assert with_heat != before
    assert page.evaluate(WARM_PIXELS) > 0  # the heatmap's peak reads as red to yellow
    page.fill("#overlay-opacity", "90")
    assert page.evaluate(CANVAS_PIXELS) != with_heat
    shot(page, "study-heatmap.png")
    assert page.text_content("#refer") == (
        "Refer to a clinician: the model is not confident in one class."
    )
    assert page.text_content("#conformal-set") == "Conformal set: {benign, malignant}"
    rows = page.locator("#probabilities tbody tr")
    assert rows.count() == 3
    names = [rows.nth(i).locator("td").first.text_content() for i in range(3)]
    assert names == ["normal", "benign", "malignant"]
    assert all(rows.nth(i).locator("td").nth(1).text_content().endswith("%") for i in range(3))
    assert "Predicted:" in (page.text_content("#predicted") or "")
    assert "registered without a model card" in (page.text_content("#model-card") or "")
    w.clean()
    w.page.close()


def test_a_risk_shows_its_calibration_referral_and_event_timeline(
    clinician: BrowserContext, served: Served
) -> None:
    w = watched(clinician)
    page = w.page
    page.goto(f"{served.url}/viewer/study/{served.risk}")
    page.wait_for_selector("#timeline-svg")
    assert page.is_hidden("#viewport-column") and page.is_visible("#timeline-column")
    risk = page.text_content("#risk") or ""
    assert re.fullmatch(r"Risk: \d+\.\d%", risk), risk
    assert (page.text_content("#calibration") or "").startswith("Calibration: Platt-scaled on")
    bars = page.locator("#timeline-svg rect.bar").count()
    rows = page.locator("#timeline-table tbody tr").count()
    assert bars == rows > 0
    assert "Hemoglobin A1c" in (page.text_content("#timeline-table") or "")
    shot(page, "study-ehr-risk.png")
    w.clean()
    w.page.close()


def test_payloads_in_dicom_labels_show_as_text_and_never_run(
    clinician: BrowserContext, served: Served
) -> None:
    w = watched(clinician)
    page = w.page
    page.goto(f"{served.url}/viewer")
    page.wait_for_selector(f"#worklist-rows tr[data-job-id='{served.xss}']")
    names = page.locator("#worklist-rows .patient-name")
    listed = [names.nth(i).text_content() for i in range(names.count())]
    assert listed.count(XSS["PatientName"]) == 2  # the study, and a series still arriving
    assert page.locator("img, svg").count() == 0
    assert page.evaluate("() => [...document.scripts].every((s) => s.src)")
    # the worklist's link opens the study
    page.click(f"#worklist-rows tr[data-job-id='{served.xss}'] a")
    page.wait_for_url(f"{served.url}/viewer/study/{served.xss}")
    page.wait_for_selector("#slice-canvas[data-ready='true']")
    assert page.text_content("#label-patient-name") == XSS["PatientName"]
    assert page.text_content("#label-patient-id") == XSS["PatientID"]
    assert page.text_content("#label-series-description") == XSS["SeriesDescription"]
    assert page.text_content("#study-title") == XSS["PatientName"]
    shot(page, "study-dicom-labels.png")
    assert page.locator("img, svg").count() == 0
    assert page.evaluate("() => [...document.scripts].every((s) => s.src)")
    w.clean()
    w.page.close()


def test_logged_out_browser_lands_on_login_and_returns_after_it(
    browser: Browser, served: Served
) -> None:
    context = new_context(browser)
    w = watched(context)
    page = w.page
    study = f"/viewer/study/{served.seg}"
    response = page.goto(served.url + study)
    assert response is not None and response.status == 200
    assert page.url == f"{served.url}/viewer/login?next=%2Fviewer%2Fstudy%2F{served.seg}"
    page.fill("#login-name", "clinician")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(served.url + study)
    page.wait_for_selector("#slice-canvas[data-ready='true']")
    # logging out ends the session: the same page sends the browser to the form again
    page.click("#logout")
    page.wait_for_url(f"{served.url}/viewer/login")
    page.goto(served.url + study)
    page.wait_for_url("**/viewer/login?next=*")
    assert "medsight_session" not in {c["name"] for c in context.cookies()}
    w.clean()
    context.close()


def test_admin_page_is_refused_to_a_clinician_and_lists_users_for_an_admin(
    browser: Browser, clinician: BrowserContext, served: Served
) -> None:
    w = watched(clinician)
    response = w.page.goto(f"{served.url}/viewer/admin")
    assert response is not None and response.status == 403
    assert "403" in (w.page.text_content("#forbidden") or "")
    w.clean()
    w.page.close()

    context = new_context(browser)
    admin = watched(context)
    log_in(served, admin, "admin", start="/viewer/admin")
    admin.page.wait_for_selector("#users-rows tr")
    names = admin.page.locator("#users-rows .user-name")
    listed = {names.nth(i).text_content() for i in range(names.count())}
    assert listed == {"admin", "clinician", "clinician2", "service"}
    assert admin.page.is_visible("#nav-admin")
    admin.clean()
    context.close()
