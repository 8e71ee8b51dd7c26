#!/usr/bin/env bash
# A CPU-only LeRobot venv with this checkout's shmpipe (editable, so `shmpipe lerobot-record` is
# registered) and pytest, for the tests marked `lerobot`:
#
#   bash .ci/lerobot_venv.sh VENV [0.4.4|0.6.1]     then   VENV/bin/python -m pytest -m lerobot
#
# LeRobot 0.4.4 (default), on python3.11 ($PYTHON): the CPU torch wheel (torch==2.13.0+cpu) is
# found by pip through find-links (/opt/wheels, $LEROBOT_WHEELS or PIP_FIND_LINKS).
#   1. torch==2.13.0, the +cpu wheel (a CUDA build is refused: it would pull GBs of CUDA).
#   2. torchvision 0.25.0 with --no-deps (lerobot 0.4.4 wants torchvision<0.26; that wheel is
#      built for CUDA torch 2.10) and a patch so `import torchvision` works beside CPU torch.
#   3. lerobot 0.4.4's core dependencies (its Requires-Dist without extras) minus torch,
#      torchvision and torchcodec, plus pandas<3.0; then lerobot==0.4.4 --no-deps.
# LeRobot 0.6.1, on Python 3.12 ($PYTHON, default `PYENV_VERSION=3.12.1 python3.12`): PyPI has
# no +cpu torch for cp312, so the CUDA build comes (~5 GB; it imports and runs on CPU).
#   1. torch==2.11.0 with torchvision==0.26.0 (its matching build: no patch needed).
#   2. lerobot[core-scripts]==0.6.1 with that torch; then torchcodec is removed: it cannot load
#      without the system's FFmpeg libraries, and LeRobot then decodes with PyAV.
# Both, last: shmpipe's dependencies (read from pyproject.toml; av stays <16 as LeRobot pins it),
# shmpipe --no-deps -e, pytest. Re-running on an existing venv re-checks each step.
set -euo pipefail

VENV=${1:?usage: lerobot_venv.sh VENV [0.4.4|0.6.1]}
LEROBOT=${2:-0.4.4}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
START=$(date +%s)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
FIND_LINKS=()
for d in ${LEROBOT_WHEELS:-} /opt/wheels; do
    [ -d "$d" ] && FIND_LINKS+=(--find-links "$d")
done
step() { echo "[lerobot_venv $LEROBOT +$(( $(date +%s) - START ))s] $*"; }

case "$LEROBOT" in
0.4.4)
    TORCH=2.13.0 TORCHVISION=0.25.0
    [ -x "$VENV/bin/python" ] || "${PYTHON:-python3.11}" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip -q)

    step "1/4 torch==$TORCH (CPU wheel)"
    "${PIP[@]}" install "${FIND_LINKS[@]}" "torch==$TORCH"
    "$VENV/bin/python" -c '
import sys, torch
if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} is a CUDA build; the +cpu wheel was expected "
             "(is it in /opt/wheels, LEROBOT_WHEELS or PIP_FIND_LINKS?)")
print("torch", torch.__version__)'

    step "2/4 torchvision==$TORCHVISION --no-deps + import patch"
    "$VENV/bin/python" -m pip show torchvision 2>/dev/null | grep -qx "Version: $TORCHVISION" ||
        "${PIP[@]}" install --no-deps "torchvision==$TORCHVISION"
    "$VENV/bin/python" "$HERE/patch_torchvision.py"

    step "3/4 lerobot==$LEROBOT and its core dependencies (no torch/torchvision/torchcodec)"
    "${PIP[@]}" install "${FIND_LINKS[@]}" "torch==$TORCH" \
        'datasets>=4.0.0,<5.0.0' 'diffusers>=0.27.2,<0.36.0' \
        'huggingface-hub[cli,hf-transfer]>=0.34.2,<0.36.0' 'accelerate>=1.10.0,<2.0.0' \
        'setuptools>=71.0.0,<81.0.0' 'cmake>=3.29.0.1,<4.2.0' 'einops>=0.8.0,<0.9.0' \
        'opencv-python-headless>=4.9.0,<4.13.0' 'av>=15.0.0,<16.0.0' 'jsonlines>=4.0.0,<5.0.0' \
        'packaging>=24.2,<26.0' 'pynput>=1.7.7,<1.9.0' 'pyserial>=3.5,<4.0' \
        'wandb>=0.24.0,<0.25.0' 'draccus==0.10.0' 'gymnasium>=1.1.1,<2.0.0' \
        'rerun-sdk>=0.24.0,<0.27.0' 'deepdiff>=7.0.1,<9.0.0' 'imageio[ffmpeg]>=2.34.0,<3.0.0' \
        'termcolor>=2.4.0,<4.0.0' 'pandas<3.0'
    "${PIP[@]}" install --no-deps "lerobot==$LEROBOT"
    ;;
0.6.1)
    TORCH=2.11.0 TORCHVISION=0.26.0
    if [ ! -x "$VENV/bin/python" ]; then
        if [ -n "${PYTHON:-}" ]; then "$PYTHON" -m venv "$VENV"
        else PYENV_VERSION=${PYENV_VERSION:-3.12.1} python3.12 -m venv "$VENV"; fi
    fi
    PIP=("$VENV/bin/python" -m pip -q)

    step "1/3 torch==$TORCH torchvision==$TORCHVISION (runs on CPU)"
    "${PIP[@]}" install "${FIND_LINKS[@]}" "torch==$TORCH" "torchvision==$TORCHVISION"

    step "2/3 lerobot[core-scripts]==$LEROBOT; torchcodec removed (LeRobot falls back to PyAV)"
    "${PIP[@]}" install "${FIND_LINKS[@]}" "lerobot[core-scripts]==$LEROBOT" \
        "torch==$TORCH" "torchvision==$TORCHVISION"
    "$VENV/bin/python" -m pip uninstall -q -y torchcodec 2>/dev/null || true
    ;;
*)
    echo "lerobot_venv.sh: LeRobot $LEROBOT: expected 0.4.4 or 0.6.1" >&2
    exit 2
    ;;
esac

step "shmpipe (editable, --no-deps) with its dependencies, pytest"
mapfile -t DEPS < <("$VENV/bin/python" -c '
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$REPO/pyproject.toml")
"${PIP[@]}" install "${FIND_LINKS[@]}" "torch==$TORCH" 'av>=15.0.0,<16.0.0' "${DEPS[@]}" \
    'pytest>=8' 'pytest-timeout>=2.3'
"${PIP[@]}" install --no-deps -e "$REPO"

"$VENV/bin/python" -c '
from importlib.metadata import version
import av, lerobot.scripts.lerobot_record, torchvision, shmpipe.integrations.lerobot.command
print("ok: lerobot", version("lerobot"), "av", av.__version__, "torchvision",
      torchvision.__version__, "shmpipe at", shmpipe.__file__)'
step "done: $VENV"
