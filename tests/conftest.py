import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def make_clip(rng: np.random.Generator, length: int = 5, obs_dim: int = 3, act_dim: int = 2, **kw):
    from prefrl.core.data import Clip

    return Clip(obs=rng.normal(size=(length, obs_dim)).astype(np.float32),
                acts=rng.normal(size=(length, act_dim)).astype(np.float32),
                true_rewards=rng.normal(size=length).astype(np.float32), **kw)
