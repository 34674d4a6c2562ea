"""benchmarks/judge_chain_stages.py's labels decide the stage-recognition figures in docs/judge.md: a frame
belongs to the stage whose action produced it (frame 0 is the reset), and the tail after the last stage to none."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "judge_chain_stages", Path(__file__).resolve().parents[1] / "benchmarks" / "judge_chain_stages.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_each_frame_is_labelled_with_the_stage_whose_action_made_it():
    # stages of 2, 3 and 1 actions: frames 0 (reset), 1-2 after stage 0's actions, 3-5 after stage 1's, 6 after 2's
    np.testing.assert_array_equal(bench.stage_of_frames([2, 3, 1]), [0, 0, 0, 1, 1, 1, 2])
    assert len(bench.stage_of_frames([63, 71, 67, 74])) == 276      # one frame per action plus the reset


def test_starts_spec_takes_ranges_and_single_indices():
    assert bench.parse_starts("0,3,7-9") == [0, 3, 7, 8, 9]
    assert bench.parse_starts("25-27") == [25, 26, 27]
