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


class FindTheLight(gym.Env):  # type: ignore[type-arg]
    """A 36x36 RGB image (height, width, channels: channel-last, as cameras give them) with one bright
    square; the action says on which half it is. Small enough for NatureCNN and a few hundred steps."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape=(36, 36, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._draw(), {}

    def _draw(self):
        self.side = int(self.np_random.integers(2))
        image = np.zeros((36, 36, 3), dtype=np.uint8)
        column = 4 if self.side == 0 else 24
        image[14:22, column:column + 8] = 255
        self.image = image
        return image

    def step(self, action):
        reward = 1.0 if int(action) == self.side else 0.0
        self.steps += 1
        return self._draw(), reward, False, self.steps >= 10, {}

    def render(self):
        return self.image


class ReachTargetDict(gym.Env):  # type: ignore[type-arg]
    """ReachTarget with a Dict observation (position and target as separate keys)."""

    def __init__(self) -> None:
        self.inner = ReachTarget()
        box = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = gym.spaces.Dict({"position": box, "target": box})
        self.action_space = self.inner.action_space

    def _split(self, observation):
        return {"position": observation[:1], "target": observation[1:]}

    def reset(self, *, seed=None, options=None):
        observation, info = self.inner.reset(seed=seed)
        return self._split(observation), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.inner.step(action)
        return self._split(observation), reward, terminated, truncated, info
