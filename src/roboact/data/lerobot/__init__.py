"""LeRobot datasets (the format of most robot data shared today), read and written without the `lerobot`
package: `dataset.py` reads a local v2.0/v2.1/v3.0 folder, `writer.py` writes v3.0. Needs pyarrow
(`pip install 'roboact[lerobot]'`). The layout is LeRobot's (lerobot/datasets/utils.py,
lerobot_dataset.py and the v2.1 -> v3.0 converter); docs/curate.md summarises it.
"""
