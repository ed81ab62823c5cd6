import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Tiny models: one thread (the root conftest's fixture says why)."""
