"""An installed shmpipe starts its workers by module name with no path injected, from a package no
other project's `workers` can shadow: pyproject.toml installs the checkout's workers/ folder as
`shmpipe_workers`. The fast test lays out a site-packages as pyproject.toml says (beside a foreign
`workers`) and records an episode from it; the soak one `pip install`s into fresh venvs:

    python3 -m pytest -q -m soak tests/test_packaging.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.helpers.media import decode_video
from tests.helpers.processes import OUR_CONTROL_PROCESSES

REPO = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
FOREIGN_WORKERS = 'raise ImportError("another project\'s `workers` package was imported")\n'
N = 12
RECORD = f"""
import sys
import numpy as np
from shmpipe import Pipeline
from shmpipe.recorder import worker_package

cameras = {{"observation.images.cam": (64, 96, 3)}}
with Pipeline(sys.argv[1], fps=30, cameras=cameras, backend="process",
              control_priority=None) as pipe:
    for i in range({N}):
        pipe.add_frame({{"observation.images.cam": np.full((64, 96, 3), 20 * i, np.uint8)}},
                       task="t")
    result = pipe.finish_episode()
print(worker_package.name(), result.videos["observation.images.cam"][0])
"""


def _source(package: str) -> Path:
    """The folder pyproject.toml installs `package` from."""
    top, _, rest = package.partition(".")
    folder = REPO / SETUPTOOLS.get("package-dir", {}).get(top, top)
    return folder.joinpath(*rest.split(".")) if rest else folder


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SHMPIPE_BACKEND")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run_recorder(argv: list[str], cwd: Path) -> str:
    """Run a recorder child from `cwd` (ours to judge for leaks); its stdout."""
    child = subprocess.Popen(argv, cwd=cwd, env=_clean_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    out, err = child.communicate(timeout=240)
    assert child.returncode == 0, f"the recorder failed:\n{out[-2000:]}{err[-3000:]}"
    return out


def _packages_in(folder: Path, installed_as: str) -> set[str]:
    return {".".join((installed_as, *p.parent.relative_to(folder).parts))
            for p in folder.rglob("__init__.py")}  # fmt: skip


def test_every_package_of_the_checkout_is_installed_and_none_as_workers():
    listed = set(SETUPTOOLS["packages"])
    in_checkout = _packages_in(REPO / "shmpipe", "shmpipe")
    in_checkout |= _packages_in(REPO / "workers", "shmpipe_workers")
    assert in_checkout - listed == set(), "pyproject.toml's packages leave these out"
    assert listed - in_checkout == set(), "pyproject.toml lists packages that do not exist"
    assert _source("shmpipe_workers") == REPO / "workers"
    assert not {p for p in listed if p.split(".")[0] == "workers"}, "installs a top-level workers"


def test_an_installed_layout_records_beside_another_projects_workers(tmp_path):
    """site-packages as pyproject.toml lays it out, plus a `workers` of another project that
    fails on import: workers start as shmpipe_workers, found without PYTHONPATH, from a folder
    that is not the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)  # fmt: skip
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print("
                                "sysconfig.get_paths()['purelib'])"], capture_output=True,
                               text=True, check=True).stdout.strip())  # fmt: skip
    # numpy, PyAV...: the running interpreter's packages (a venv's too, which --system-site-packages
    # does not reach), as plain folders after site-packages (their .pth files are not run)
    parents = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_parent_packages.pth").write_text("\n".join(sorted(parents)) + "\n")
    for package in SETUPTOOLS["packages"]:  # each package's own files: not its subfolders
        target = site.joinpath(*package.split("."))
        target.mkdir(parents=True)
        for file in filter(Path.is_file, _source(package).iterdir()):
            shutil.copy(file, target)
    (site / "workers").mkdir()
    (site / "workers" / "__init__.py").write_text(FOREIGN_WORKERS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    out = _run_recorder([str(venv / "bin" / "python"), "-c", RECORD, str(tmp_path / "ds")],
                        cwd=elsewhere).split()  # fmt: skip
    assert out[0] == "shmpipe_workers"
    frames, _ = decode_video(out[1])
    means = [float(f.mean()) for f in frames]
    assert len(means) == N and all(abs(m - 20 * i) < 2 for i, m in enumerate(means)), means


@pytest.mark.soak
@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-e"])
def test_pip_install_records_the_demo_from_another_folder(tmp_path, editable):
    """A fresh venv, shmpipe installed by pip (about a minute: it installs the dependencies)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = [str(venv / "bin" / "pip"), "install", "-q"] + (["-e"] if editable else [])
    subprocess.run([*install, str(REPO)], check=True, cwd=tmp_path, timeout=600)
    _run_recorder([str(venv / "bin" / "shmpipe"), "demo", "--root", str(tmp_path / "demo"),
                   "--seconds", "2"], cwd=tmp_path)  # fmt: skip
    assert sorted((tmp_path / "demo" / "data").rglob("*.parquet")), "no data was written"
    assert sorted((tmp_path / "demo" / "videos").rglob("*.mp4")), "no video was written"
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv)})["purelib"])
    assert not (purelib / "workers").exists(), "site-packages holds a top-level workers"
    if not editable:
        assert (purelib / "shmpipe_workers" / "encoder.py").exists()
