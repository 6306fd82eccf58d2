import os

os.environ.setdefault("MUJOCO_GL", "egl")


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one intra-op thread (and far faster on a busy machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
