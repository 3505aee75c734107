import pytest

from tests.support.stack import running_stack


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    """The whole system, once on SQLite and once on PostgreSQL."""
    yield from running_stack(tmp_path_factory, f"stack-{request.param}", request.param)
