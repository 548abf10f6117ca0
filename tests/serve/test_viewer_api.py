"""The viewer's routes through the app: pages, assets, headers, worklist, voxels, audit.

The voxel routes are checked against the files themselves: the image against the stored
(de-identified) input read with `read_image`, the mask and heatmap against the result's NIfTI
read with `read_nifti`, so a transposed axis or a shifted grid fails here, not in a browser.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from service_kit import (
    Service,
    ct_series_bytes,
    nifti_bytes,
    png_bytes,
    register_models,
    running_service,
    upload,
    wait_for_job,
)
from sqlalchemy import select

from medsight.imaging.io.nifti import read_nifti
from medsight.imaging.io.read_image import read_image
from medsight.serve.jobs.worker import input_path, result_dir
from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import record_key, seal
from medsight.serve.store.schema import AuditRecord, DicomSeries, Job
from medsight.serve.viewer.routes import STATIC

PASSWORD = "correct horse battery"  # service_kit.make_users's default
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PAGES = ("/viewer", f"/viewer/study/{uuid.UUID(int=7)}", "/viewer/admin")
VOXEL_ROUTES = ("viewer/image", "viewer/mask", "viewer/heatmap")
MODEL_CARD = "# seg3d\n\nIntended use: <b>research</b> only. <script>alert('card')</script>\n"
LABELS = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0042",
    "StudyDate": "20260102",
    "SeriesDescription": "CT chest <b>1 mm</b>",
    "Modality": "CT",
    "PatientBirthDate": "19500101",
}
VIEWER_DIR = Path(__file__).parents[2] / "src" / "medsight" / "serve" / "viewer" / "static"


def deid_key(service: Service) -> str:
    """The service's de-identification key (made in DATA_DIR on first start)."""
    return (service.settings.data_dir / "deid.key").read_text().strip()


def add_series(
    db: Database,
    key: str,
    labels: dict[str, str],
    job_id: str | None = None,
    state: str = "queued",
    instances: int = 12,
) -> None:
    """A DICOM-node series row with sealed display labels (as the receiver writes it)."""
    with db.write() as session:
        session.add(
            DicomSeries(
                series_key=uuid.uuid4().hex,
                calling_ae="CT_SCANNER",
                client="127.0.0.1",
                state=state,
                modality="CT",
                instances=instances,
                job_id=job_id,
                display=seal(labels, record_key(key)),
            )
        )
        session.commit()


def submit(service: Service, role: str, model: str, files: list) -> str:
    header = service.tokens.header(role)
    r = service.client.post(f"/v1/predict/{model}", files=files, headers=header)
    assert r.status_code in (200, 202), r.text
    job = wait_for_job(service.client, r.json()["job_id"], header)
    assert job["state"] == "done", job
    return str(job["job_id"])


def cookie_login(service: Service, name: str) -> dict[str, str]:
    """A Cookie header for a fresh login session of ``name`` (the client keeps no cookies)."""
    r = service.client.post("/v1/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    service.client.cookies.clear()
    return {"Cookie": f"medsight_session={r.cookies['medsight_session']}"}


@dataclass
class Viewer:
    service: Service
    seg: str  # seg3dcard job of the clinician (model with a card)
    cls: str  # cls3d job of the service account, from a "DICOM node" study
    png: str  # cls2d job of the clinician
    nii: str  # seg3d job of the clinician on a NIfTI (RAS+ voxel axes)
    other: str  # cls3d job of clinician2: not the clinician's to read

    def get(self, url: str, role: str = "clinician", **kwargs):
        headers = {**self.service.tokens.header(role), **kwargs.pop("headers", {})}
        return self.service.client.get(url, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    tmp = tmp_path_factory.mktemp("viewer")
    registry = register_models(tmp / "registry", tmp / "runs")
    (tmp / "runs" / "seg3d" / "model_card.md").write_text(MODEL_CARD)
    registry.add(tmp / "runs" / "seg3d", "seg3dcard")
    with running_service(tmp, f"sqlite:///{tmp}/medsight.db", registry=registry) as service:
        series = ct_series_bytes(tmp, slices=12)
        v = Viewer(
            service,
            seg=submit(service, "clinician", "seg3dcard", upload(series)),
            cls=submit(service, "service", "cls3d", upload(series)),
            png=submit(service, "clinician", "cls2d", upload([png_bytes()])),
            nii=submit(service, "clinician", "seg3d", [("files", ("a.nii.gz", nifti_bytes()))]),
            other=submit(service, "clinician2", "cls3d", upload(series)),
        )
        add_series(service.db, deid_key(service), LABELS, job_id=v.cls)
        yield v


# ---------------------------------------------------------------- pages and assets


@pytest.mark.parametrize("path", PAGES)
def test_a_browser_without_a_session_is_sent_to_the_login_page(viewer: Viewer, path: str) -> None:
    client = viewer.service.client
    stale = {"Cookie": f"medsight_session={uuid.uuid4().hex}"}
    for headers in (HTML, {**HTML, **stale}):
        r = client.get(path, headers=headers, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/viewer/login?next=" + path.replace("/", "%2F")
    # followed, the browser lands on the login form
    r = client.get(path, headers=HTML)
    assert r.status_code == 200 and 'id="login-form"' in r.text
    # a script or API client asking for JSON gets the API's 401
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_pages_open_with_a_session_and_the_admin_page_is_for_admins(viewer: Viewer) -> None:
    client = viewer.service.client
    clinician, admin = (
        cookie_login(viewer.service, "clinician"),
        cookie_login(viewer.service, "admin"),
    )
    for path, marker in ((PAGES[0], 'id="worklist"'), (PAGES[1], 'id="slice-canvas"')):
        r = client.get(path, headers={**HTML, **clinician})
        assert r.status_code == 200 and marker in r.text, path
        assert r.headers["content-type"].startswith("text/html")
    r = client.get("/viewer/admin", headers={**HTML, **clinician})
    assert r.status_code == 403 and 'id="forbidden"' in r.text
    assert r.headers["content-type"].startswith("text/html")
    r = client.get("/viewer/admin", headers={**HTML, **admin})
    assert r.status_code == 200 and 'id="users"' in r.text
    # the same refusal for a JSON client is the API's 403, audited like any other
    r = viewer.get("/viewer/admin")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_login_page_and_every_referenced_asset_are_public(viewer: Viewer) -> None:
    client = viewer.service.client
    r = client.get("/viewer/login")
    assert r.status_code == 200 and 'id="login-form"' in r.text
    referenced: set[str] = set()
    for page in VIEWER_DIR.glob("*.html"):
        text = page.read_text()
        referenced |= set(re.findall(r'/viewer/static/([\w.-]+)"', text))
        assert "<style" not in text and " style=" not in text, page.name  # CSP: no inline CSS
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), page.name  # no inline script
        assert not re.search(r"\son[a-z]+=", text), page.name  # no inline handlers
    for script in VIEWER_DIR.glob("*.js"):
        text = script.read_text()
        referenced |= set(re.findall(r'from "\./([\w.-]+)"', text))
        # DOM text only: nothing parses a string as HTML
        assert not re.search(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b", text), script.name
        assert "document.write" not in text and "DOMParser" not in text, script.name
    assert referenced == set(STATIC), "assets referenced by pages differ from the whitelist"
    for name, media in STATIC.items():
        r = client.get(f"/viewer/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"] == media
        assert r.content == (VIEWER_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "login.html",  # a page, served at its own route only
        "VIEWER.CSS",
        "viewer.css.map",
        "..%2Froutes_viewer.py",
        "%2e%2e%2f%2e%2e%2fapp.py",
        "..%5Croutes_viewer.py",
        "common.js%00.py",
        "../../routes_viewer.py",
        "%2Fetc%2Fpasswd",
    ],
)
def test_assets_off_the_whitelist_are_not_served(viewer: Viewer, name: str) -> None:
    r = viewer.service.client.get(f"/viewer/static/{name}")
    assert r.status_code == 404, (name, r.text[:200])
    assert b"import" not in r.content and b"root:" not in r.content


def test_every_viewer_response_carries_the_security_headers(viewer: Viewer) -> None:
    client, session = viewer.service.client, cookie_login(viewer.service, "clinician")
    job = f"/v1/jobs/{viewer.seg}"
    responses = {
        "login page": client.get("/viewer/login"),
        "asset": client.get("/viewer/static/study.js"),
        "missing asset": client.get("/viewer/static/nope.js"),
        "worklist page": client.get("/viewer", headers={**HTML, **session}),
        "study page": client.get(f"/viewer/study/{viewer.seg}", headers={**HTML, **session}),
        "redirect": client.get("/viewer", headers=HTML, follow_redirects=False),
        "403 page": client.get("/viewer/admin", headers={**HTML, **session}),
        "worklist": client.get("/v1/worklist", headers=session),
        "meta": client.get(f"{job}/viewer", headers=session),
        "image": client.get(f"{job}/viewer/image", headers=session),
        "mask": client.get(f"{job}/viewer/mask", headers=session),
        "no heatmap": client.get(f"{job}/viewer/heatmap", headers=session),
        "no credentials": client.get(f"{job}/viewer/image"),
    }
    for what, r in responses.items():
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, what
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("referrer-policy") == "no-referrer", what
        cache = "no-cache" if what == "asset" else "no-store"
        assert r.headers.get("cache-control") == cache, what
    assert [r.status_code for r in responses.values()] == [
        *(200, 200, 404, 200, 200, 303, 403, 200, 200, 200, 200, 404, 401)
    ]


# ---------------------------------------------------------------- worklist


def test_worklist_follows_job_ownership_and_shows_labels_to_clinicians(
    tmp_path: Path, database_url: str
) -> None:
    with running_service(tmp_path, database_url) as s:
        series = ct_series_bytes(tmp_path, slices=10)
        own = submit(s, "clinician", "seg3d", upload(series))
        node = submit(s, "service", "cls3d", upload(series))
        other = submit(s, "clinician2", "cls2d", upload([png_bytes()]))
        key = deid_key(s)
        add_series(s.db, key, LABELS, job_id=node)
        arriving = {**LABELS, "PatientName": "Late^Arrival", "SeriesDescription": "still coming"}
        add_series(s.db, key, arriving, state="receiving", instances=3)

        def listing(role: str) -> list[dict]:
            r = s.client.get("/v1/worklist", headers=s.tokens.header(role))
            assert r.status_code == 200, r.text
            assert r.json()["refresh_seconds"] > 0
            return list(r.json()["items"])

        clinician = listing("clinician")
        jobs = {item["job_id"]: item for item in clinician if item["kind"] == "job"}
        assert set(jobs) == {own, node}  # not clinician2's upload
        assert jobs[own]["state"] == "done" and jobs[own]["task"] == "segment"
        assert jobs[own]["model"] == {"name": "seg3d", "version": "1"}
        assert "nodule" in jobs[own]["summary"] and jobs[own]["display"] is None
        assert jobs[node]["task"] == "classify" and jobs[node]["summary"]
        wanted = {k: LABELS[k] for k in ("PatientName", "PatientID", "StudyDate")}
        assert jobs[node]["display"] == {
            **wanted,
            "SeriesDescription": LABELS["SeriesDescription"],
            "Modality": "CT",
        }
        received = [item for item in clinician if item["kind"] == "series"]
        assert len(received) == 1 and received[0]["state"] == "received"
        assert received[0]["display"]["PatientName"] == "Late^Arrival"
        assert received[0]["job_id"] is None
        # newest first: the series arrived last
        created = [item["created"] for item in clinician]
        assert clinician[0]["kind"] == "series" and created[1:] == sorted(created[1:])[::-1]

        admin = listing("admin")
        assert {i["job_id"] for i in admin if i["kind"] == "job"} == {own, node, other}
        assert any(i["kind"] == "series" for i in admin)
        assert {i["job_id"] for i in listing("clinician2") if i["kind"] == "job"} == {other, node}
        service = listing("service")  # a machine: its own jobs, no patient labels
        assert [(i["job_id"], i["display"]) for i in service] == [(node, None)]

        with s.db.session() as session:
            audit = session.execute(
                select(AuditRecord).where(AuditRecord.action == "worklist_view")
            ).scalars()
            seen = [(r.actor, r.outcome) for r in audit]
        assert seen == [(n, "ok") for n in ("clinician", "admin", "clinician2", "service")]


# ---------------------------------------------------------------- one study


def test_meta_describes_grid_layers_result_and_model_card(viewer: Viewer) -> None:
    s = viewer.service
    meta = viewer.get(f"/v1/jobs/{viewer.seg}/viewer").json()
    volume = read_image(input_path(s.settings.data_dir, viewer.seg, "dicom"))
    assert meta["shape"] == list(volume.shape) == [12, 40, 40]
    assert meta["spacing_mm"] == pytest.approx(volume.spacing_mm)
    assert meta["modality"] == "CT" and meta["window"]["width"] > 0
    assert meta["flip"] == {"rows": False, "columns": False}  # DICOM rows and columns as stored
    assert meta["layers"] == {"image": True, "mask": True, "heatmap": False}
    assert meta["labels"] == [{"value": 1, "name": "lung"}, {"value": 2, "name": "nodule"}]
    assert meta["class_names"] == ["background", "lung", "nodule"]
    assert meta["task"] == "segment" and meta["state"] == "done"
    assert meta["model"]["name"] == "seg3dcard"
    assert meta["model_card"] == MODEL_CARD  # text as written; the page shows it as text
    assert meta["display"] is None  # an upload: no patient labels exist
    structures = meta["result"]["structures"]
    assert set(structures) == {"lung", "nodule"}
    for component in structures["nodule"]["components"]:
        assert 0 <= component["slice"] < 12
    assert "files" not in meta["result"] and "links" not in meta["result"]

    cls = viewer.get(f"/v1/jobs/{viewer.cls}/viewer").json()
    assert cls["layers"] == {"image": True, "mask": False, "heatmap": True}
    assert cls["model_card"] is None and cls["labels"] == []
    assert set(cls["result"]["probabilities"]) == {"normal", "benign", "malignant"}
    assert cls["display"]["PatientName"] == "Doe^Jane"
    assert "PatientBirthDate" not in cls["display"]  # only the fields the viewer shows
    assert viewer.get(f"/v1/jobs/{viewer.cls}/viewer", role="service").json()["display"] is None


def _voxels(r, dtype: str) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    shape = tuple(int(n) for n in r.headers["x-shape"].split(","))
    return np.frombuffer(r.content, dtype=np.dtype(dtype)).reshape(shape)


def test_voxels_match_the_input_and_the_result_files(viewer: Viewer) -> None:
    s = viewer.service
    data = s.settings.data_dir
    source = read_image(input_path(data, viewer.seg, "dicom"))
    image = _voxels(viewer.get(f"/v1/jobs/{viewer.seg}/viewer/image"), "<i2")
    assert image.shape == source.shape
    assert np.array_equal(image, np.rint(source.array).astype(np.int16))
    r = viewer.get(f"/v1/jobs/{viewer.seg}/viewer/image")
    spacing = [float(v) for v in r.headers["x-spacing"].split(",")]
    assert spacing == pytest.approx(source.spacing_mm)

    mask = _voxels(viewer.get(f"/v1/jobs/{viewer.seg}/viewer/mask"), "u1")
    nifti = read_nifti(result_dir(data, viewer.seg) / "segmentation" / "segmentation.nii.gz")
    assert mask.shape == image.shape
    assert np.array_equal(mask, nifti.array.astype(np.uint8))
    assert set(np.unique(mask)) <= {0, 1, 2} and (mask == 2).any()
    # each nodule the result lists is on the slice it names, in this grid
    meta = viewer.get(f"/v1/jobs/{viewer.seg}/viewer").json()
    for component in meta["result"]["structures"]["nodule"]["components"]:
        z, y, x = component["centroid_voxel"]
        assert abs(component["slice"] - z) <= 0.5
        y, x = round(y), round(x)
        near = mask[component["slice"], max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
        assert (near == 2).any(), component

    heat = _voxels(viewer.get(f"/v1/jobs/{viewer.cls}/viewer/heatmap"), "u1")
    stored = read_nifti(result_dir(data, viewer.cls) / "heatmap" / "heatmap.nii.gz").array
    assert heat.shape == image.shape
    assert np.array_equal(heat, np.rint(np.clip(stored, 0, 1) * 255).astype(np.uint8))
    assert heat.max() > 0

    flat = _voxels(viewer.get(f"/v1/jobs/{viewer.png}/viewer/image"), "<i2")
    assert flat.shape == (1, 48, 48)  # a 2D upload is one slice


@pytest.mark.parametrize("route", ("viewer", *VOXEL_ROUTES))
def test_someone_elses_or_unknown_jobs_are_not_found(viewer: Viewer, route: str) -> None:
    for job in (viewer.other, str(uuid.UUID(int=9)), "not-a-job"):
        r = viewer.get(f"/v1/jobs/{job}/{route}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (job, route)
    # the service account may not read a clinician's upload either
    assert viewer.get(f"/v1/jobs/{viewer.seg}/{route}", role="service").status_code == 404


def test_layers_a_job_lacks_are_not_found(viewer: Viewer) -> None:
    assert viewer.get(f"/v1/jobs/{viewer.seg}/viewer/heatmap").status_code == 404
    assert viewer.get(f"/v1/jobs/{viewer.cls}/viewer/mask").status_code == 404
    assert viewer.get(f"/v1/jobs/{viewer.png}/viewer/mask").status_code == 404


def test_every_viewer_read_is_audited(viewer: Viewer) -> None:
    s = viewer.service

    def records() -> list[AuditRecord]:
        with s.db.session() as session:
            return list(
                session.execute(
                    select(AuditRecord).where(AuditRecord.action == "result_view")
                ).scalars()
            )

    before = len(records())
    for route in ("viewer", "viewer/image", "viewer/mask"):
        assert viewer.get(f"/v1/jobs/{viewer.seg}/{route}").status_code == 200
    assert viewer.get(f"/v1/jobs/{viewer.other}/viewer/image").status_code == 404
    new = records()[before:]
    with s.db.session() as session:
        job = session.get(Job, viewer.seg)
        assert job is not None
        sha = (job.model_sha256, job.input_sha256)
    assert [(r.actor, r.outcome, r.target) for r in new] == [
        ("clinician", "ok", f"{viewer.seg}/viewer"),
        ("clinician", "ok", f"{viewer.seg}/viewer/image"),
        ("clinician", "ok", f"{viewer.seg}/viewer/mask"),
        ("clinician", "not_found", viewer.other),
    ]
    assert all((r.model_sha256, r.input_sha256) == sha for r in new[:3])


def test_images_over_the_voxel_limit_are_refused(viewer: Viewer) -> None:
    state = viewer.service.client.app.state.service  # type: ignore[attr-defined]
    settings = state.settings
    state.settings = settings.model_copy(update={"max_voxels": 1000})  # the input has 19200
    try:
        for route in ("viewer", "viewer/image", "viewer/mask"):
            r = viewer.get(f"/v1/jobs/{viewer.seg}/{route}")
            assert r.status_code == 413, (route, r.text)
            assert r.json()["error"]["code"] == "payload_too_large"
    finally:
        state.settings = settings
    assert viewer.get(f"/v1/jobs/{viewer.seg}/viewer/image").status_code == 200


def test_nifti_studies_are_shown_the_radiological_way(viewer: Viewer) -> None:
    """NIfTI voxel axes run to the patient's right and front: the page flips both to show
    the patient's right on the left and the front at the top, as DICOM rows already are."""
    meta = viewer.get(f"/v1/jobs/{viewer.nii}/viewer").json()
    assert meta["flip"] == {"rows": True, "columns": True}
    assert meta["shape"] == [10, 32, 32] and meta["layers"]["mask"] is True
    source = read_image(input_path(viewer.service.settings.data_dir, viewer.nii, "nifti"))
    image = _voxels(viewer.get(f"/v1/jobs/{viewer.nii}/viewer/image"), "<i2")
    assert np.array_equal(image, np.rint(source.array).astype(np.int16))
