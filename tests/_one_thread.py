"""A module-scoped fixture for test modules that run many small networks.

    from tests._one_thread import one_thread  # noqa: F401
    pytestmark = pytest.mark.usefixtures("one_thread")

With matrices of width <= 1000, one torch thread is faster than several and does not slow to a crawl
on a busy CPU; the previous thread count is restored when the module is done.
"""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
