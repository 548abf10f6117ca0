"""A text-classify run's weights on disk, and ``--init`` transfer.

``RUN/model.safetensors`` is the primary encoder with its heads, ``RUN/models/{name}.safetensors``
every trained one; networks are rebuilt from the contract's ``spec`` and model name. Nothing
is unpickled.

``--init`` takes a safetensors file (tensors whose names and shapes match are loaded, the
rest reported) or a folder: a medsight text run (its ``model.safetensors``; its
``tokenizer.json`` is reused so the embeddings keep their meaning), or a Hugging Face
checkpoint, which needs the optional ``transformers`` extra.
"""

from __future__ import annotations

from pathlib import Path

from medsight.errors import InputError
from medsight.runs.weights import read_weights
from medsight.text.models.document_classifier import DocumentClassifier, TextModelSpec
from medsight.text.models.subword_tokenizer import TOKENIZER_FILE

MODELS_DIR = "models"
WEIGHTS_FILE = "model.safetensors"


def load_model(name: str, spec: TextModelSpec, path: Path) -> DocumentClassifier:
    """Encoder ``name`` with its heads and the weights in ``path``, in eval mode.

    Raises:
        InputError: the weights are missing, unreadable or belong to another network.
    """
    model = DocumentClassifier(name, spec)
    try:
        model.load_state_dict(read_weights(path))
    except RuntimeError:
        raise InputError(f"{path}: weights do not fit model {name!r} of model.json") from None
    return model.eval()


def init_source(path: Path) -> tuple[Path, Path | None]:
    """The safetensors file ``--init`` names, and a tokenizer.json to reuse with it.

    Raises:
        InputError: nothing usable at ``path`` (a Hugging Face folder without the
            ``transformers`` extra names the extra to install).
    """
    path = Path(path)
    if path.is_dir():
        medsight_run = (path / WEIGHTS_FILE).is_file() and (path / TOKENIZER_FILE).is_file()
        if (path / "config.json").is_file() and not medsight_run:
            try:
                import transformers  # noqa: F401
            except ImportError:
                raise InputError(
                    f"--init {path}: a Hugging Face checkpoint folder needs the optional "
                    "extra: pip install 'medsight[transformers]'"
                ) from None
            raise InputError(
                f"--init {path}: Hugging Face checkpoints are not supported by text-classify "
                "yet; pass a safetensors file or a medsight text run folder"
            )
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise InputError(f"--init {path}: no {WEIGHTS_FILE} in the folder")
        path = weights
    read_weights(path)  # checked now: a bad file fails before any training
    tokenizer = path.parent / TOKENIZER_FILE
    return path, tokenizer if tokenizer.is_file() else None
