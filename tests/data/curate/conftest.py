from __future__ import annotations

import shutil

import pytest

from tests.data.curate.mini_rh20t import build_mini_rh20t


@pytest.fixture(scope="session")
def _mini_rh20t_master(tmp_path_factory):
    return build_mini_rh20t(tmp_path_factory.mktemp("rh20t_master") / "RH20T")


@pytest.fixture
def mini_rh20t(_mini_rh20t_master, tmp_path):
    """A fresh copy per test (tests may damage it); building once keeps the suite fast."""
    return shutil.copytree(_mini_rh20t_master, tmp_path / "RH20T")
