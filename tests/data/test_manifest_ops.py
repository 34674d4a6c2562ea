"""Manifest operations as library functions: they raise (the CLIs turn that into a message and exit 2)."""
import pytest

from roboact.data.manifest import read_manifest
from roboact.data.manifest_ops import ManifestOpError, exclude_tasks, resplit
from roboact.data.splits import SplitError

from .test_split_cli import manifest  # noqa: F401  (fixture)


def test_resplit_returns_what_it_wrote(manifest, tmp_path):  # noqa: F811
    info = resplit(manifest, tmp_path / "e.jsonl", "episode", val_fraction=0.2, test_fraction=0.2)
    assert info["by"] == "episode" and sum(info["splits"].values()) == len(read_manifest(manifest))
    info = resplit(manifest, tmp_path / "c.jsonl", "compositional", pairs=[("close", "window")])
    assert info["heldout_pairs"] == [["close", "window"]]
    assert {(r.action, r.object) for r in read_manifest(tmp_path / "c.jsonl") if r.split == "test"} == \
        {("close", "window")}


@pytest.mark.parametrize("kw, err, msg", [
    (dict(by="camera", cameras=["corner9"]), SplitError, "unknown camera 'corner9'; cameras in .*: corner, corner3"),
    (dict(by="camera", cameras=["corner", "corner3"]), SplitError, "holding out every camera"),
    (dict(by="compositional", pairs=[("lift", "cup")]), SplitError, r"\('lift', 'cup'\) has no clip"),
    (dict(by="diagonal"), ManifestOpError, "by: must be one of episode, compositional, camera"),
])
def test_resplit_refuses_what_it_cannot_promise(manifest, tmp_path, kw, err, msg):  # noqa: F811
    with pytest.raises(err, match=msg):
        resplit(manifest, tmp_path / "x.jsonl", **kw)
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(ManifestOpError, match="is the input manifest"):
        resplit(manifest, manifest, "episode")


def test_exclude_errors_and_counts(manifest, tmp_path):  # noqa: F811
    with pytest.raises(ManifestOpError, match="no tasks given"):
        exclude_tasks(manifest, [], tmp_path / "x.jsonl")
    res = exclude_tasks(manifest, ["open-drawer"], tmp_path / "x.jsonl")
    assert res["dropped"] == {"open-drawer": 12} and res["kept"] == 36
