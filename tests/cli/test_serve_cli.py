"""`medsight serve` hands its options to the service settings (checked before it listens)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsight.cli.main import app
from medsight.errors import InputError


def test_dicom_config_option_reaches_the_node(tmp_path: Path) -> None:
    bad = tmp_path / "node.yaml"
    bad.write_text("peers: [unclosed\n")
    result = CliRunner().invoke(app, ["serve", "--port", "1", "--dicom-config", str(bad)])
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == f"{bad}: not valid YAML"


def test_destination_must_be_a_peer(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("peers: [{ae_title: PACS, port: 104}]\ndestination: OTHER\n")
    result = CliRunner().invoke(app, ["serve", "--port", "1", "--dicom-config", str(config)])
    assert isinstance(result.exception, InputError)
    with pytest.raises(InputError, match="destination OTHER is not one of the peers"):
        raise result.exception
