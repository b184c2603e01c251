"""Tuned Tensor's AWS CDK app: stage config, the service stack and one construct per area."""

from __future__ import annotations

import importlib.util
import sys

from infra.paths import CORE_LAYER_PYTHON_DIR

# infra reads its storage constants from tt_core (the layer's source). A checkout that has not been
# `pip install -e .`-ed still synthesizes: put the layer's python/ directory on the path.
if importlib.util.find_spec("tt_core") is None:
    sys.path.insert(0, str(CORE_LAYER_PYTHON_DIR))
