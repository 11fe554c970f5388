"""Shared fixtures: tiny prepared datasets built once per session, in a temp folder."""

from __future__ import annotations

import os

import pytest

# tests never write into the checkout's cache
os.environ.setdefault("MCRL_CACHE", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mcrl-test-cache-{os.getpid()}"))
# ... nor into its figures/ folder (notebooks executed by tests inherit this)
os.environ.setdefault("MCRL_FIGURES", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mcrl-test-figures-{os.getpid()}"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """The simulator at its ``tiny`` scale, prepared once."""
    from mcrl_kit.config import DataConfig
    from mcrl_kit.data import prepare

    return prepare(DataConfig(source="simulator", scale="tiny", seed=0), out=tmp_path_factory.mktemp("tiny") / "data", progress=False)


@pytest.fixture(scope="session")
def tiny_runs(tiny_data, tmp_path_factory):
    """SQN and MCRL trained for a few steps on ``tiny_data``: ``(study, {label: [run folder]})``."""
    from mcrl_kit.experiments import Study

    study = Study(tiny_data, steps=30, batch_size=64, eval_every=15, device="cpu", threads=1, out=tmp_path_factory.mktemp("runs"))
    return study, study.train({"SQN": "sqn", "MCRL": "mcrl"})


def shared_file_or_skip(*parts: str):
    from mcrl_kit.paths import shared_file

    path = shared_file(*parts)
    if path is None:
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (the real-data samples), which is absent here")
    return path


@pytest.fixture
def one_thread():
    """One torch thread for the test (restored after): small models and many small ops are fastest so
    on a shared 2-core machine. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
