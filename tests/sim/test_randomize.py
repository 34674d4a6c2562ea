"""Per-episode camera/light/table randomisation of Meta-World corpora: sampling, geometry, rendering, corpus."""
from __future__ import annotations

import math

import numpy as np
import pytest

from roboact.sim import appearance as ap

CAMS = ("corner", "corner3", "corner4")


def test_sampling_is_deterministic_bounded_and_varied():
    samples = [ap.sample_appearance(s, ap.KINDS, CAMS, 3) for s in range(200)]
    assert samples[7] == ap.sample_appearance(7, ap.KINDS, CAMS, 3)
    assert len({repr(s) for s in samples}) == len(samples)
    for s in samples:
        for pose in s["camera"].values():
            assert abs(pose["azimuth_deg"]) <= ap.AZIMUTH_DEG and abs(pose["elevation_deg"]) <= ap.ELEVATION_DEG
            assert ap.DISTANCE_SCALE[0] <= pose["distance_scale"] <= ap.DISTANCE_SCALE[1]
            assert ap.FOVY_SCALE[0] <= pose["fovy_scale"] <= ap.FOVY_SCALE[1]
        light = s["light"]
        assert len(light["tilt_deg"]) == 3 and all(0 <= t <= ap.LIGHT_TILT_DEG for t in light["tilt_deg"])
        assert ap.DIFFUSE_SCALE[0] <= light["diffuse_scale"] <= ap.DIFFUSE_SCALE[1]
        assert ap.AMBIENT[0] <= light["ambient"] <= ap.AMBIENT[1]
        for rgb in s["table"].values():
            assert ap.BRIGHTNESS[0] * ap.TINT[0] - 1e-3 <= min(rgb) and max(rgb) <= ap.BRIGHTNESS[1] + 1e-3
    # the ranges are used, not just respected
    az = [p["azimuth_deg"] for s in samples for p in s["camera"].values()]
    assert min(az) < -0.8 * ap.AZIMUTH_DEG and max(az) > 0.8 * ap.AZIMUTH_DEG
    # one camera's pose does not depend on which other cameras or kinds were asked for
    alone = ap.sample_appearance(7, ["camera"], ["corner4"], 3)
    assert alone == {"camera": {"corner4": samples[7]["camera"]["corner4"]}}
    assert ap.sample_appearance(7, [], CAMS, 3) == {}
    with pytest.raises(ValueError, match="colour"):
        ap.sample_appearance(0, ["colour"], CAMS, 3)


@pytest.mark.parametrize("az,el,scale", [(15.0, 10.0, 1.1), (-15.0, -10.0, 0.9), (5.0, 0.0, 1.0)])
def test_orbit_keeps_the_pivot_at_the_same_pixel(az, el, scale):
    rng = np.random.default_rng(0)
    pivot = np.array([0.0, 0.7, 0.1])
    pos = np.array([-1.1, -0.4, 0.6])
    fwd = (pivot - pos) / np.linalg.norm(pivot - pos) + rng.normal(0, 0.05, 3)   # not exactly at the pivot
    z = -fwd / np.linalg.norm(fwd)
    x = np.cross([0, 0, 1.0], z)
    x /= np.linalg.norm(x)
    mat = np.stack([x, np.cross(z, x), z], axis=1)
    new_pos, new_mat = ap.orbit(pos, mat, pivot, az, el, scale)
    np.testing.assert_allclose(new_mat.T @ new_mat, np.eye(3), atol=1e-9)
    before, after = mat.T @ (pivot - pos), new_mat.T @ (pivot - new_pos)
    np.testing.assert_allclose(after, scale * before, atol=1e-9)          # same direction in the camera
    v0, v1 = pos - pivot, new_pos - pivot
    assert ap.elevation_of(v1) == pytest.approx(ap.elevation_of(v0) + el, abs=1e-6)
    turn = math.degrees(math.atan2(v1[1], v1[0]) - math.atan2(v0[1], v0[0]))
    assert turn == pytest.approx(az, abs=1e-6)


# --- rendering ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env():
    pytest.importorskip("metaworld")
    from roboact.sim.metaworld import MetaWorldEnv

    e = MetaWorldEnv("handle-press-v3", ("corner", "behindGripper"), image_size=48)
    yield e
    e.close()


@pytest.mark.sim
def test_randomised_frames_differ_but_show_the_scene_and_physics_is_unchanged(env):
    plain = env.reset(seed=3)
    for kinds in (["camera"], ["light"], ["table"], list(ap.KINDS)):
        look = ap.sample_appearance(11, kinds, env.cameras, env.model.nlight)
        obs = env.reset(seed=3, appearance=look)
        assert np.array_equal(obs.state, plain.state)
        for cam in env.cameras:
            img = obs.rgb[cam].astype(float)
            diff = np.abs(img - plain.rgb[cam]).mean()
            assert diff > 1.0, (kinds, cam, diff)
            assert img.std() > 15 and 20 < img.mean() < 235, (kinds, cam)   # not blank, not washed out
        if "camera" in kinds:
            fovy = env.appearance["camera"]["corner"]["fovy"]
            assert fovy == pytest.approx(45.0 * look["camera"]["corner"]["fovy_scale"], abs=1e-3)
    again = env.reset(seed=3)   # a plain reset after a randomised one restores the model's own scene
    assert all(np.array_equal(again.rgb[c], plain.rgb[c]) for c in env.cameras)
    assert env.appearance == {}


@pytest.mark.sim
def test_corpus_records_the_pose_keeps_base_camera_and_defaults_unchanged(tmp_path):
    pytest.importorskip("metaworld")
    from roboact.data.manifest import read_manifest
    from roboact.sim.corpus import CorpusConfig, build_corpus
    from roboact.utils.io import read_json

    def build(name, randomize, seed=0):
        cfg = CorpusConfig(out_dir=str(tmp_path / name), tasks=["handle-press-v3"], episodes_per_task=2,
                           cameras=["corner", "corner4"], image_size=32, frames_after_success=1,
                           heldout_pairs=0, progress=False, seed=seed, randomize=randomize)
        build_corpus(cfg)
        return read_manifest(tmp_path / name / "manifest.jsonl")

    plain = build("plain", [])
    rand = build("rand", ["table", "camera"])   # any order; stored in one order
    assert [r.clip_id for r in rand] == [r.clip_id for r in plain]
    assert all("camera_pose" not in r.extra and "light" not in r.extra for r in plain)
    assert "randomize" not in read_json(tmp_path / "plain/episodes/handle-press-v3/e0000.json")["settings"]
    assert read_json(tmp_path / "rand/episodes/handle-press-v3/e0000.json")["settings"]["randomize"] == \
        ["camera", "table"]
    for p, r in zip(plain, rand):
        assert r.camera == p.camera and r.split == p.split and r.num_frames == p.num_frames
        pose = r.extra["camera_pose"]
        assert set(pose) == {"azimuth_deg", "elevation_deg", "distance_scale", "fovy_scale", "fovy"}
        assert abs(pose["azimuth_deg"]) <= ap.AZIMUTH_DEG and "table" in r.extra and "light" not in r.extra
        rec_p = np.load(tmp_path / "plain" / p.episode)
        rec_r = np.load(tmp_path / "rand" / r.episode)
        assert np.array_equal(rec_p["states"], rec_r["states"])
    poses = {(r.extra["episode_index"], r.camera): r.extra["camera_pose"]["azimuth_deg"] for r in rand}
    assert len(set(poses.values())) == len(poses)                          # differs across episodes/cameras
    assert rand[0].extra == build("rand2", ["camera", "table"])[0].extra   # same seed, same pose
    assert build("rand_s1", ["camera", "table"], seed=1)[0].extra["camera_pose"] != rand[0].extra["camera_pose"]


def test_bad_randomize_values_name_the_field(tmp_path):
    import argparse

    from roboact.sim import cli as sim_cli
    from roboact.sim.corpus import CorpusConfig
    from roboact.utils.config import ConfigError

    with pytest.raises(ConfigError, match="randomize.*unknown kind 'texture'.*camera, light, table"):
        CorpusConfig(out_dir=str(tmp_path), randomize=["camera", "texture"])
    with pytest.raises(ConfigError, match="randomize.*twice"):
        CorpusConfig(out_dir=str(tmp_path), randomize=["light", "light"])
    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", "metaworld", "--out", str(tmp_path), "--randomize", "camera,fog"])
    with pytest.raises(ConfigError, match="randomize.*'fog'"):
        args.func(args)
