"""A custom environment and a custom features extractor, named by tests as `custom_parts:Class`."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class ReachTarget(gym.Env):  # type: ignore[type-arg]
    """Move a point on a line to the target; reward is minus the distance. Small, fast, continuous."""

    def __init__(self, size: float = 1.0) -> None:
        self.size = size
        self.observation_space = gym.spaces.Box(-size, size, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.target = self.np_random.uniform(-self.size, self.size, size=2)
        self.steps = 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.position, self.target], dtype=np.float32)

    def step(self, action):
        self.position = float(np.clip(self.position + 0.1 * float(action[0]), -self.size, self.size))
        self.steps += 1
        return self._obs(), -abs(self.position - self.target), False, self.steps >= 20, {}


class TinyEncoder(BaseFeaturesExtractor):
    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(observation_space.shape)), features_dim),
                                 nn.Tanh())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


class NotAnEncoder:
    pass
