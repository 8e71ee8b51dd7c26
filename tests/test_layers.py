"""The architecture is a contract: import-linter's layers (pyproject.toml) hold, `import
shmpipe` loads nothing until a public name is used, and every module and class stays short
enough to read whole."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 300  # a module of shmpipe/ or workers/
MAX_CLASS_LINES = 200  # from its `class` line to its last line


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


def test_no_module_is_over_300_lines_and_no_class_over_200():
    """A longer one holds more than one responsibility: move one out, into its own class or
    module, rather than squeezing lines."""
    too_long = []
    for path in sorted([*(REPO / "shmpipe").rglob("*.py"), *(REPO / "workers").rglob("*.py")]):
        name, source = path.relative_to(REPO).as_posix(), path.read_text()
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source, name)):
            length = node.end_lineno - node.lineno + 1 if isinstance(node, ast.ClassDef) else 0
            if length > MAX_CLASS_LINES:
                too_long.append(f"{name}: class {node.name} is {length} lines (at most "
                                f"{MAX_CLASS_LINES})")  # fmt: skip
    assert not too_long, "\n".join(too_long)
