from pathlib import Path

import pytest
import torch

from tests.conftest import make_feature_corpus

HELD_OUT = (("push", "window"), ("open", "door"))
FAST = {"optim.lr": 2e-3, "checkpoint_every": 1000, "eval_every": 10, "log_every": 5}


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """These tests run thousands of tiny tensor ops and small BLAS calls (sklearn); on a loaded 2-core
    machine a second thread makes each one many times slower (spin-waiting), so run them single-threaded
    and restore the settings afterwards."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def trained(tmp_path_factory, tiny_clip_backbone, one_torch_thread):
    """A compositional corpus (HELD_OUT pairs only in test), a full model and the mean-pool baseline."""
    from roboact.train.loop import train
    from tests.train.test_train import make_cfg

    root = tmp_path_factory.mktemp("eval_corpus")
    manifest, cache = make_feature_corpus(root, tiny_clip_backbone, held_out=HELD_OUT)
    full = train(make_cfg(manifest, cache, tiny_clip_backbone, root / "full", steps=40, **FAST))
    base = train(make_cfg(manifest, cache, tiny_clip_backbone, root / "base", steps=40, **FAST,
                          **{"model.fusion": "meanpool", "model.disentangle": False}))
    return root, manifest, cache, Path(full.final), Path(base.final)
