"""verify and stats take many datasets (a list, or folders holding them): one verdict per
dataset in order, a summary, and the worst exit code."""

from __future__ import annotations

import json
import shutil

from shmpipe.tools.cli import main
from tests.helpers.paths import REFERENCE, needs_reference

pytestmark = needs_reference


def test_verify_and_stats_of_a_folder_of_datasets(tmp_path, capsys):
    fleet = tmp_path / "fleet"
    for name in ("rig0", "rig1", "rig2"):
        shutil.copytree(REFERENCE, fleet / name)
    (fleet / "rig1/videos/observation.images.cam0/chunk-000/file-000.mp4").unlink()
    assert main(["verify", str(fleet)]) == 2
    out = capsys.readouterr().out
    assert "3 datasets: 2 whole, 1 with problems, 0 not a dataset" in out, out
    assert out.index("rig0") < out.index("rig1") < out.index("rig2")
    assert main(["verify", "--json", str(fleet / "rig0"), str(fleet / "rig2")]) == 0
    assert [r["ok"] for r in json.loads(capsys.readouterr().out)] == [True, True]
    assert main(["stats", "--json", str(fleet)]) == 2  # rig1 refused, the others rewritten
    reports = json.loads(capsys.readouterr().out)
    assert [r["root"] for r in reports] == [str(fleet / "rig0"), str(fleet / "rig2")]
    assert all(r["written"] and r["differences"] for r in reports)
