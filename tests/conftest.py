import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A folder where the whole workflow ran locally on the tiny config (once per session)."""
    from workflow_run import snakemake, write_tiny_config

    folder = tmp_path_factory.mktemp("tiny_run")
    write_tiny_config(folder)
    result = snakemake(folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder
