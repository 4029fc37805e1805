#!/bin/sh
# Builds the Ultralytics test environment on first use and reuses it afterwards.
# PyPI's torchvision loads only with PyPI's (CUDA) torch, so Ultralytics cannot share the
# project venv's CPU torch: it gets its own venv outside the checkout (about 6 GB, 1-2 min).
# The stamp names the pins: changing a pin rebuilds.
set -eu
V="${ULTRA_VENV:-$HOME/.cache/cfgsched/ultralytics-venv}"
PY="${PYTHON:-python3}"
STAMP="$V/.cfgsched-ultralytics-8.4.190-torch-2.14.1-tv-0.29.1"
[ -f "$STAMP" ] && exit 0
rm -rf "$V"
"$PY" -m venv "$V"
"$V/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1 \
    ultralytics==8.4.190 opencv-python==4.14.0.94
YOLO_OFFLINE=1 YOLO_CONFIG_DIR="$V/yolo-config" MPLCONFIGDIR="$V/mpl" \
    "$V/bin/python" -c "import torch, torchvision, ultralytics"
touch "$STAMP"
