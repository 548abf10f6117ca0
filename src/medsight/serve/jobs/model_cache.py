"""Registered models loaded once per process, each verified against its SHA-256s when loaded.

A request names a model as ``NAME`` (its newest version that is not retired) or
``NAME:VERSION``. Loading goes through `ModelRegistry.verified_path`, which re-hashes every
file of the version, so a model changed on disk after registration is refused (and never
half-loaded). Retired versions are not served.

The modalities' task plug-ins (torch, Lightning, MONAI, spaCy: seconds to import) are
registered by `register_tasks`, which `medsight serve` runs in a background thread once it
listens, and at the latest by the first `get`: ``/healthz`` answers without them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from medsight.errors import InputError
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.tasks import Task, task_of_run
from medsight.tasks.registry import LoadedRun
from medsight.tasks.results import RiskResult, TextResult

#: tasks whose models read one patient's record (FHIR Bundle or MEDS rows), not images: those
#: whose result record is a `RiskResult` (the record type names the task it belongs to)
RECORD_TASKS = frozenset({RiskResult.model_fields["task"].default})
#: tasks whose models read one clinical note (``text-classify``, ``text-ner``): those whose
#: result record is a `TextResult`
TEXT_TASKS = frozenset(get_args(TextResult.model_fields["task"].annotation))


@dataclass
class LoadedModel:
    """One verified, loaded model version: its task and the task's loaded run."""

    name: str
    version: str
    sha256: str
    folder: Path
    task: Task
    run: LoadedRun

    def is_2d(self) -> bool:
        """True when the model takes single 2D images (one slice)."""
        return self.run.is_2d()

    def takes_records(self) -> bool:
        """True when the model reads a patient's record rather than an image."""
        return self.task.run_name in RECORD_TASKS

    def takes_text(self) -> bool:
        """True when the model reads a clinical note (plain text, FHIR document, HL7 v2)."""
        return self.task.run_name in TEXT_TASKS

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def register_tasks() -> None:
    """Import every modality, registering its task plug-ins (a no-op after the first call)."""
    import medsight.modalities  # noqa: F401


def _version_key(version: str) -> tuple[int, int | str]:
    return (1, int(version)) if version.isdigit() else (0, version)


class ModelCache:
    """Resolves model references and keeps loaded versions."""

    def __init__(self, registry: ModelRegistry, metrics: ServiceMetrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self._loaded: dict[tuple[str, str], LoadedModel] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str) -> tuple[str, str]:
        """``(name, version)`` for ``NAME`` or ``NAME:VERSION``.

        Raises:
            ApiError: ``not_found`` for an unknown or retired model.
        """
        name, _, version = ref.partition(":")
        versions = self.registry.list().get(name, {})
        live = [v for v, entry in versions.items() if not entry.get("retired")]
        if version:
            if version not in live:
                raise ApiError("not_found", f"model {name}:{version} is not served")
            return name, version
        if not live:
            raise ApiError("not_found", f"model {name} is not served")
        return name, max(live, key=_version_key)

    def get(self, name: str, version: str) -> LoadedModel:
        """The loaded model, verifying and loading it on first use.

        Raises:
            ApiError: ``not_found`` when a file fails its SHA-256 check or cannot be loaded
                (the registry entry is then unusable until an admin fixes it).
        """
        key = (name, version)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            register_tasks()
            start = time.perf_counter()
            try:
                folder = self.registry.verified_path(name, version)
                task = task_of_run(folder)
                model = LoadedModel(
                    name=name,
                    version=version,
                    sha256=self.registry.entry(name, version)["sha256"],
                    folder=folder,
                    task=task,
                    run=task.load(folder),
                )
            except InputError:
                raise ApiError(
                    "not_found", f"model {name}:{version} failed verification or loading"
                ) from None
            self.metrics.model_load.labels(name, version).set(time.perf_counter() - start)
            self._loaded[key] = model
            return model
