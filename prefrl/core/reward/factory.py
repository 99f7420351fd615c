"""The reward model for an env's spaces: an ensemble of MLPs for flat observations, of CNNs for images."""

from __future__ import annotations

import gymnasium as gym

from prefrl.config import RewardModelConfig
from prefrl.core.reward.cnn import CnnBody
from prefrl.core.reward.mlp import MlpBody
from prefrl.core.reward.model import RewardEnsemble
from prefrl.errors import PrefrlError


def make_reward_model(obs_space: gym.Space, act_space: gym.Space, cfg: RewardModelConfig) -> RewardEnsemble:
    """The reward ensemble for an env: MLPs for flat observations, CNNs for images ((H, W, C) or (C, H, W))."""
    shape = obs_space.shape
    if shape is not None and len(shape) <= 1:
        return RewardEnsemble(MlpBody(obs_space, act_space, cfg))
    if isinstance(obs_space, gym.spaces.Box) and shape is not None and len(shape) == 3:
        return RewardEnsemble(CnnBody(obs_space, act_space, cfg))
    raise PrefrlError(f"observations {obs_space} are neither a flat vector nor an image: wrap the env so they "
                      "are (gymnasium.wrappers.FlattenObservation for dicts and tuples; an image needs shape "
                      "(H, W, C) or (C, H, W), e.g. gymnasium.wrappers.AddRenderObservation(render_only=True))")
