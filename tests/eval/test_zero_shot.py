import pytest
import torch
from torch import nn

from roboact.data.captions import atomic_caption
from roboact.eval.metrics import factor_accuracy
from roboact.eval.zero_shot import class_prototypes, vocab_grid, zero_shot_classifiers


def test_vocab_grid_covers_every_combination_once():
    caps, ids = vocab_grid(["Robot", "Human"], ["open", "push"], ["drawer", "door", "plate"])
    assert len(caps) == len(set(caps)) == 12 and ids.shape == (12, 3)
    i = ids.tolist().index([1, 1, 2])
    assert caps[i] == atomic_caption("Human", "push", "plate")


def test_class_prototypes_average_normalised_rows():
    feats = torch.tensor([[2.0, 0.0], [0.0, 5.0], [0.0, 1.0]])   # class 0: rows 0, 1; class 1: row 2
    p = class_prototypes(feats, torch.tensor([0, 0, 1]), 2)
    s = 2 ** -0.5
    assert torch.allclose(p, torch.tensor([[s, s], [0.0, 1.0]]))   # row norms do not weight the mean
    with pytest.raises(ValueError, match="cover"):
        class_prototypes(feats, torch.tensor([0, 0, 0]), 2)


class OneHotText(nn.Module):
    """Text MLP stand-in: the text feature carries (subject, action, object) ids; each branch returns the
    one-hot of its own factor, so correct prototypes are exactly the one-hots."""
    sizes = {"subject": 2, "action": 3, "object": 4}

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def encode_text_features(self, x):
        return {f: nn.functional.one_hot(x[:, j].long(), 4).float() for j, f in enumerate(self.sizes)}


def test_zero_shot_classifiers_route_each_factor_through_its_text_branch():
    caps, ids = vocab_grid(["R", "H"], ["a", "b", "c"], ["w", "x", "y", "z"])
    protos = zero_shot_classifiers(OneHotText(), ids.float(), ids, OneHotText.sizes, batch=5)
    for f, k in OneHotText.sizes.items():
        assert torch.allclose(protos[f], torch.eye(4)[:k]), f
    clips = torch.tensor([2, 0, 1, 1])
    assert factor_accuracy(torch.eye(4)[clips], protos["action"], clips) == 1.0
