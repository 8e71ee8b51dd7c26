"""The architecture is a contract: import-linter's layers (pyproject.toml) hold, and `import
shmpipe` loads nothing until a public name is used."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    run = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_import_shmpipe_loads_no_layer_until_a_name_is_used():
    code = (
        "import sys, shmpipe\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('shmpipe.') or m in"
        " ('pyarrow', 'av', 'rich'))\n"
        "print(','.join(loaded))\n"
        "shmpipe.Pipeline\n"
        "print('pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.splitlines()  # fmt: skip
    assert out[0] == "", f"`import shmpipe` loaded {out[0]}"
    assert out[1] == "True", "shmpipe.Pipeline did not load the recorder"


def test_a_public_name_that_does_not_exist_is_an_attribute_error():
    import shmpipe

    with pytest.raises(AttributeError, match="NoSuchThing"):
        shmpipe.NoSuchThing  # noqa: B018
