import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """These tests run thousands of tiny tensor ops and small BLAS calls (sklearn); on a loaded 2-core
    machine a second thread makes each one many times slower (spin-waiting), so run them single-threaded
    and restore the settings afterwards."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)
