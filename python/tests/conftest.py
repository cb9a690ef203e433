"""Shared helpers: the repository root, the built CLI, offline Hugging Face."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tiny models are built from configs; nothing is downloaded
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "dist" / "src" / "cli.js"


def run_cli(*args: str) -> str:
    """Runs the built moescope CLI from the repository root; its stdout, or the test fails with its stderr."""
    exe = shutil.which("node")
    if exe is None or not CLI.exists():
        pytest.fail(f"the moescope CLI is not built ({CLI}); run `npm run build` first")
    out = subprocess.run([exe, str(CLI), *args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout
