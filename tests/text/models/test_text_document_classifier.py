"""Document encoders and their heads: shapes, padding, determinism, safetensors, ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medsight.errors import InputError
from medsight.runs.weights import save_weights, transfer_weights
from medsight.text.models.document_classifier import DocumentClassifier, TextModelSpec, split_logits
from medsight.text.models.document_encoders import ENCODERS, create_encoder
from medsight.text.tasks.classify_weights import load_model

SPEC = TextModelSpec(vocab_size=50, max_tokens=24, output_sizes=[3, 2], embed_dim=8, hidden_dim=6)


def _model(name: str, spec: TextModelSpec = SPEC, seed: int = 0) -> DocumentClassifier:
    torch.manual_seed(seed)
    return DocumentClassifier(name, spec).eval()


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_gives_each_output_its_logits(name: str) -> None:
    ids = torch.randint(2, 50, (4, 11))
    logits = _model(name)(ids)
    assert logits.shape == (4, 5)
    assert [p.shape[1] for p in split_logits(logits, SPEC.output_sizes)] == [3, 2]


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_padding_does_not_change_a_notes_logits(name: str) -> None:
    model = _model(name)
    ids = torch.randint(2, 50, (1, 9))
    padded = torch.cat([ids, torch.zeros(1, 7, dtype=torch.int64)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(ids), model(padded), atol=1e-5)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_safetensors_round_trip_predicts_the_same(name: str, tmp_path: Path) -> None:
    model = _model(name)
    path = save_weights(model, tmp_path / "m.safetensors")
    again = load_model(name, SPEC, path)
    ids = torch.randint(2, 50, (3, 10))
    with torch.no_grad():
        assert torch.equal(model(ids), again(ids))


def test_weights_of_another_encoder_are_refused(tmp_path: Path) -> None:
    path = save_weights(_model("cnn"), tmp_path / "cnn.safetensors")
    with pytest.raises(InputError, match="do not fit model 'bilstm'"):
        load_model("bilstm", SPEC, path)


def test_transfer_loads_the_encoder_and_reports_new_heads(tmp_path: Path) -> None:
    path = save_weights(_model("cnn"), tmp_path / "cnn.safetensors")
    other = _model("cnn", SPEC.model_copy(update={"output_sizes": [4]}), seed=1)
    loaded, skipped = transfer_weights(other, path)
    assert "embedding.weight" in loaded and "heads.0.weight" in skipped
    assert torch.equal(other.embedding.weight, _model("cnn").embedding.weight)


def test_unknown_encoder_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="cnn, bilstm, transformer"):
        create_encoder("gpt", 8, 8, 8, 1, 1, 0.0)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_onnx_export_matches_torch(name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _model(name)
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        (torch.ones(2, 5, dtype=torch.int64),),
        str(path),
        input_names=["input_ids"],
        output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}},
        opset_version=17,
        dynamo=False,
    )
    ids = torch.randint(2, 50, (3, 12))
    ids[1, 5:] = 0
    got = ort.InferenceSession(str(path)).run(None, {"input_ids": ids.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(ids).numpy(), atol=1e-4)
