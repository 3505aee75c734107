"""The external tools some tests drive (Chromium, docker-compose, promtool):
make test installs them, so their absence fails a test rather than skips it."""
from __future__ import annotations


def require_tool(path: str | None, package: str) -> str:
    """make test installs these from Debian's packages: absence is a failure."""
    import pytest
    if not path:
        pytest.fail(f"{package} is not installed; make test installs it (tests/install-tools.sh)")
    return path
