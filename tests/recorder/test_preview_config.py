"""PreviewConfig: where the pictures go, checked when it is made (no rerun needed here)."""

from __future__ import annotations

import pytest

from shmpipe import ConfigError, PreviewConfig


@pytest.mark.parametrize(
    ("address", "url"),
    [("", "rerun+http://127.0.0.1:9876/proxy"),
     ("10.0.0.5", "rerun+http://10.0.0.5:9876/proxy"),
     ("10.0.0.5:9000", "rerun+http://10.0.0.5:9000/proxy"),
     ("rerun+http://robot.local:9877/proxy", "rerun+http://robot.local:9877/proxy")],
)  # fmt: skip
def test_a_viewer_address_becomes_the_url_rerun_connects_to(address, url):
    assert PreviewConfig("connect", address=address).url == url


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"mode": "window"}, "spawn, connect or save"), ({"mode": "save"}, "path="),
     ({"max_height": 8}, "max_height"), ({"fps": 0}, "fps"), ({"jpeg_quality": 0}, "1..100")],
)  # fmt: skip
def test_a_bad_preview_setting_is_a_config_error_naming_it(settings, message):
    with pytest.raises(ConfigError, match=message):
        PreviewConfig(**settings)
