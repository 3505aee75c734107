"""The checkout the tests run from, and their temporary directories."""
from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clean_tmp(path: Path):
    shutil.rmtree(path, ignore_errors=True)
