import pytest
import torch

# Small tensors run fastest on one thread, and two threads on a busy 2-core machine can be 10x slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _float64_and_seed():
    """Tests run in float64 unless they ask otherwise, with a fixed seed and few threads."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)
