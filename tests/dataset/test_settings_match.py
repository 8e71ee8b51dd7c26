"""A resume with other settings is refused, naming each difference
(shmpipe.dataset.settings_match)."""

from __future__ import annotations

import pytest

from shmpipe.errors import ConfigError
from tests.helpers.dataset_writer import (
    CAMERAS,
    FEATURES,
    VIDEO,
    file_digests,
    open_writer,
    read_json,
    record_episode,
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fps": 15}, "fps: expected 15, found 30"),
        (
            {"cameras": {**CAMERAS, "observation.images.cam1": (48, 64, 3)}},
            "camera 'observation.images.cam1' shape: expected [48, 64, 3], found [24, 32, 3]",
        ),
        (
            {"features": {**FEATURES, "observation.state": (7,)}},
            "feature 'observation.state' shape: expected [7], found [6]",
        ),
        (
            {"features": {"observation.state": (6,)}},
            "features: expected ['observation.state'], found ['action', 'observation.state']",
        ),
        ({"video": {**VIDEO, "crf": 20}}, "video encoder crf: expected 20, found 30"),
        ({"video": {**VIDEO, "vcodec": "libx264"}}, "video.codec: expected 'h264', found 'av1'"),
    ],
)
def test_resume_with_other_settings_is_refused_and_names_the_difference(tmp_path, change, message):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
    before = file_digests(root)
    with pytest.raises(ValueError) as error:
        open_writer(root, **change)
    assert message in str(error.value)
    assert file_digests(root) == before
    open_writer(root).close()  # the refused attempt left the dataset open to others


# -- settings ----------------------------------------------------------------------------------
def test_robot_type_and_feature_names_reach_info_json_and_resume_compares_them(tmp_path):
    root = tmp_path / "ds"
    names = {"action": ["shoulder_pan.pos", "b", "c", "d", "e", "gripper.pos"]}
    with open_writer(root, robot_type="so101", feature_names=names) as w:
        record_episode(w, 5, ["a"], 0)
    info = read_json(root / "meta/info.json")
    assert info["robot_type"] == "so101"
    assert info["features"]["action"]["names"] == names["action"]
    assert info["features"]["observation.state"]["names"] is None
    assert info["features"]["observation.images.cam0"]["names"] == ["height", "width", "channels"]
    open_writer(root).close()  # neither given: the dataset's are kept
    open_writer(root, robot_type="so101", feature_names=names).close()
    with pytest.raises(ConfigError, match="robot_type: expected 'koch', found 'so101'"):
        open_writer(root, robot_type="koch")
    renamed = {"action": ["x"] * 6}
    with pytest.raises(ConfigError, match="feature 'action' names: expected \\['x'"):
        open_writer(root, feature_names=renamed)
    assert read_json(root / "meta/info.json") == info
