"""`medsight serve` starts without the task plug-ins: building the app imports no torch, and
the model cache registers the tasks itself when it first loads a model.

Each check runs in a fresh interpreter: the test process has imported torch long ago.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service_kit import register_models

from medsight.serve.viewer import data as viewer_data


def run_python(code: str, *args: str) -> str:
    """``code`` in a fresh interpreter (no MEDSIGHT_* settings); its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_building_the_app_imports_no_model_code(tmp_path: Path) -> None:
    code = """
import sys
from pathlib import Path
from medsight.serve.api.app import create_app
from medsight.serve.launch import serve
from medsight.serve.settings import ServiceSettings
work = Path(sys.argv[1])
create_app(ServiceSettings(data_dir=work / "data", registry=work / "registry"))
print(sorted(n for n in ("torch", "lightning", "monai", "spacy") if n in sys.modules))
"""
    assert run_python(code, str(tmp_path)) == "[]"


def test_the_first_model_load_registers_the_tasks(tmp_path: Path) -> None:
    register_models(tmp_path / "registry", tmp_path / "runs")
    code = """
import sys
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.jobs.model_cache import ModelCache
cache = ModelCache(ModelRegistry(sys.argv[1]), ServiceMetrics())
loaded = cache.get(*cache.resolve("seg3d"))
print(loaded.task.name)
"""
    assert run_python(code, str(tmp_path / "registry")) == "image-segment"


def test_viewer_result_files_are_the_tasks_own() -> None:
    """The viewer writes the tasks' file names out (their modules import torch)."""
    from medsight.imaging.explain.explain_run import HEATMAP_FILE
    from medsight.imaging.tasks.segment_predict import NIFTI_FILE, STRUCTURES_FILE

    assert f"segmentation/{NIFTI_FILE}" == viewer_data.MASK_FILE
    assert f"heatmap/{HEATMAP_FILE}" == viewer_data.HEAT_FILE
    assert f"segmentation/{STRUCTURES_FILE}" == viewer_data.LABELS_FILE
