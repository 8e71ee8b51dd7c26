"""Names the format reserves are refused at start() with an error naming them, and nothing is
written: a capture-time column's name with capture_times=True, LeRobot's own columns."""

from __future__ import annotations

import pytest

from shmpipe import ConfigError, Pipeline

CAM = "observation.images.front"


@pytest.mark.parametrize("where", ["feature", "camera"])
def test_capture_time_column_name_refused_with_capture_times(tmp_path, where):
    taken = f"capture_time.{CAM}"
    cameras, features = {CAM: (16, 16, 3)}, {}
    if where == "feature":
        features[taken] = (1,)
    else:
        cameras[taken] = (16, 16, 3)
    pipe = Pipeline(tmp_path / "ds", fps=30, cameras=cameras, features=features,
                    capture_times=True)  # fmt: skip
    with pytest.raises(ConfigError, match=r"reserved for the capture times.*capture_time\."):
        pipe.start()
    pipe.close()
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("name", ["task", "task_index", "frame_index"])
def test_lerobot_column_names_refused(tmp_path, name):
    with pytest.raises(ConfigError, match=f"reserved for LeRobot's own columns.*{name}"):
        Pipeline(tmp_path / "ds", fps=30, cameras={CAM: (16, 16, 3)}, features={name: (1,)})
