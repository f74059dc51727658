"""A module-scoped fixture for test modules that run many small networks.

    from tests._one_thread import one_thread  # noqa: F401
    pytestmark = pytest.mark.usefixtures("one_thread")

With matrices of width <= 1000, one torch thread is faster than several and does not slow to a crawl
on a busy CPU; the previous thread count is restored when the module is done.
"""

import pytest
import torch

from lecture_utils import config


@pytest.fixture(scope="module")
def one_thread():
    previous = config.one_thread()
    yield
    torch.set_num_threads(previous)
