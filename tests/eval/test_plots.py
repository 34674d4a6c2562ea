import numpy as np

from roboact.eval.plots import evenly_spaced, pca_2d


def test_pca_separates_clusters_along_the_first_component_deterministically():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6)) * 0.1
    b = a.copy()
    b[:, 2] += 5.0
    xy = pca_2d(np.concatenate([a, b]))
    assert xy.shape == (100, 2)
    assert (xy[:50, 0] < 0).all() and (xy[50:, 0] > 0).all()     # sign rule: the +5 loading is positive
    assert np.array_equal(xy, pca_2d(np.concatenate([a, b])))
    assert pca_2d(np.ones((3, 1))).shape == (3, 2)               # fewer dims than components: padded


def test_evenly_spaced_keeps_ends_and_order():
    assert evenly_spaced(5, 10).tolist() == [0, 1, 2, 3, 4]
    idx = evenly_spaced(1000, 4)
    assert idx.tolist() == [0, 333, 666, 999]
