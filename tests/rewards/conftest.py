import pytest

from synth.rewards import clear_cache


@pytest.fixture(autouse=True)
def _fresh_targets():
    # Rows are cached by id; tests reuse ids for different rows.
    clear_cache()
    yield
    clear_cache()
