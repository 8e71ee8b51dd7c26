"""info.json's names, shapes and fps: refused before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe.dataset.writer import check_names
from shmpipe.errors import ConfigError
from tests.helpers.dataset_writer import (
    open_writer,
    read_json,
)

BAD_SETTINGS = {  # (cameras, features, feature_names) -> what the error must say
    "empty name": ({"": (4, 4, 3)}, {}, None, "camera name ''"),
    "dot": ({".": (4, 4, 3)}, {}, None, "camera name '.'"),
    "dot dot": ({"..": (4, 4, 3)}, {}, None, "camera name '..'"),
    "slash": ({}, {"a/b": (2,)}, None, "feature name 'a/b'"),
    "NUL": ({"c\0": (4, 4, 3)}, {}, None, "without '/' or NUL"),
    "long": ({"c" * 300: (4, 4, 3)}, {}, None, "at most 200 bytes"),
    "zero dimension": ({}, {"state": (0,)}, None, "feature 'state': expected a vector shape"),
    "two dimensions": ({}, {"state": (2, 3)}, None, "feature 'state'"),
    "gray camera": ({"cam": (4, 4)}, {}, None, "camera 'cam': expected shape (height, width, 3)"),
    "zero height": ({"cam": (0, 4, 3)}, {}, None, "height, width >= 1"),
    "RGBA": ({"cam": (4, 4, 4)}, {}, None, "camera 'cam'"),
    "reserved": ({}, {"index": (1,)}, None, "adds to every item): ['index']"),
    "both": ({"x": (4, 4, 3)}, {"x": (2,)}, None, "both as camera and feature: ['x']"),
    "names count": ({}, {"state": (3,)}, {"state": ["a", "b"]}, "['state']: 2 names for 3"),
    "names of nothing": ({}, {"state": (1,)}, {"arm": ["a"]}, "'arm' is not a feature"),
}


@pytest.mark.parametrize("what", BAD_SETTINGS)
def test_check_names_refuses_what_the_dataset_could_not_hold(tmp_path, what):
    cameras, features, feature_names, message = BAD_SETTINGS[what]
    with pytest.raises(ConfigError) as error:
        check_names(cameras, features, feature_names)
    assert message in str(error.value)
    with pytest.raises(ValueError):
        open_writer(
            tmp_path / "ds", cameras=cameras, features=features, feature_names=feature_names
        )
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("fps", [True, 0, 2.5, "30"])
def test_fps_must_be_a_whole_number(tmp_path, fps):
    with pytest.raises(ConfigError, match="fps"):
        open_writer(tmp_path / "ds", fps=fps)


def test_numpy_integer_fps_is_written_as_a_number(tmp_path):
    open_writer(tmp_path / "ds", fps=np.int64(30)).close()
    assert read_json(tmp_path / "ds/meta/info.json")["fps"] == 30
