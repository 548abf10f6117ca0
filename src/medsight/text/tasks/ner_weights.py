"""A tagger run's weights and vocabulary on disk, and ``--init`` transfer from safetensors.

The network is rebuilt from ``plan.json`` (network, sizes), ``vocabulary.json`` (table sizes)
and the contract's tags; nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

from medsight.errors import InputError
from medsight.runs.contract import WEIGHTS
from medsight.runs.weights import read_weights
from medsight.text.models.tagger_inference import Tagger
from medsight.text.models.tagger_network import TaggerNetwork
from medsight.text.models.tagger_sizes import TaggerSizes
from medsight.text.models.tagger_vocabulary import Vocabulary
from medsight.text.tasks.ner_config import PLAN_FILE, read_plan
from medsight.text.tasks.ner_contract import VOCABULARY_FILE, read_contract


def new_network(
    network: str, sizes: TaggerSizes, tags: list[str], vocabulary: Vocabulary
) -> TaggerNetwork:
    """An untrained network for these tags and vocabulary tables."""
    return TaggerNetwork(
        network,
        sizes,
        tags,
        len(vocabulary.words),
        len(vocabulary.shapes),
        len(vocabulary.chars),
    )


def load_tagger(run_dir: Path) -> Tagger:
    """The run's trained tagger, in eval mode.

    Raises:
        InputError: a missing run (names the command that makes it), or files that do not
            fit together.
    """
    run_dir = Path(run_dir)
    contract = read_contract(run_dir)
    plan = read_plan(run_dir / PLAN_FILE)
    vocabulary = Vocabulary.load(run_dir / VOCABULARY_FILE)
    network = new_network(contract.model_name, plan.sizes, contract.tags, vocabulary)
    try:
        network.load_state_dict(read_weights(run_dir / WEIGHTS))
    except RuntimeError:
        raise InputError(
            f"{run_dir / WEIGHTS}: weights do not fit the network in plan.json/vocabulary.json"
        ) from None
    return Tagger(network.eval(), vocabulary, plan.sizes, list(contract.tags))
