"""Feature: the encoder that turns observations into features, as stable-baselines3 features extractors.

mlp keeps SB3's flattening (or, for Dict observations, its CombinedExtractor); cnn is SB3's NatureCNN;
custom is any `BaseFeaturesExtractor` named `package.module:Class`; transformer is ours, below.

This module imports torch: import it only where a model is built or loaded.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from .config import Config
from .env import describe

TRANSFORMER_DEFAULT_DIM = 64


class TransformerEncoder(BaseFeaturesExtractor):
    """Reads an observation as a sequence of tokens and attends across them.

    - a vector of n numbers is n tokens of one number each (each feature attends to the others);
    - a matrix (a trading window, or vector frames stacked by obs.stackFrames) is one token per row,
      so attention runs across time.
    Tokens are projected to `features_dim`, given a learned position embedding, passed through a small
    pre-norm Transformer encoder (no dropout: it hurts value estimates in RL), and mean-pooled.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = TRANSFORMER_DEFAULT_DIM,
                 n_layers: int = 2, n_heads: int | None = None) -> None:
        super().__init__(observation_space, features_dim)
        shape = observation_space.shape
        self.tokens = int(shape[0])
        self.token_dim = int(math.prod(shape[1:])) if len(shape) > 1 else 1
        heads = n_heads or next(h for h in (4, 2, 1) if features_dim % h == 0)
        self.embed = nn.Linear(self.token_dim, features_dim)
        self.position = nn.Parameter(torch.zeros(1, self.tokens, features_dim))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(features_dim, heads, dim_feedforward=2 * features_dim,
                                           dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(features_dim)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        tokens = observations.reshape(observations.shape[0], self.tokens, self.token_dim)
        encoded = self.encoder(self.embed(tokens) + self.position)
        return self.norm(encoded.mean(dim=1))


def custom_class(config: Config) -> type:
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    name = config.feature.customClass
    if name is None:
        raise config.refuse("feature.encoder", "needs feature.customClass (package.module:Class)")
    from .env import import_user_module

    module_name, _, attribute = name.partition(":")
    try:
        cls = getattr(import_user_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise config.refuse("feature.customClass", f"cannot be imported ({error})") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseFeaturesExtractor)):
        raise config.refuse("feature.customClass", "is not a stable_baselines3 BaseFeaturesExtractor subclass")
    return cls


def policy_kwargs(config: Config, observation_space: gym.Space[Any]) -> dict[str, Any]:
    """The features-extractor part of the policy's keyword arguments; refuses encoders that do not fit."""
    from stable_baselines3.common.preprocessing import is_image_space
    from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN

    encoder, dim = config.feature.encoder, config.feature.embedDim
    observations = describe(observation_space)
    dict_obs = isinstance(observation_space, gym.spaces.Dict)
    if encoder == "mlp":
        if dim is not None:
            raise config.refuse("feature.embedDim", "does not apply to the mlp encoder (it flattens observations)")
        if config.agent.policyType == "CnnPolicy":
            return {"features_extractor_class": FlattenExtractor}
        return {}
    if encoder == "cnn":
        if dict_obs:  # SB3's CombinedExtractor runs a NatureCNN over each image key
            return {"features_extractor_kwargs": {"cnn_output_dim": dim}} if dim else {}
        if not is_image_space(observation_space, check_channels=False):
            raise config.refuse("feature.encoder", f"needs image observations, and these are {observations}")
        return {"features_extractor_class": NatureCNN, "features_extractor_kwargs": {"features_dim": dim or 512}}
    if encoder == "transformer":
        if not isinstance(observation_space, gym.spaces.Box):
            raise config.refuse("feature.encoder", f"reads Box observations, and these are {observations}")
        return {"features_extractor_class": TransformerEncoder,
                "features_extractor_kwargs": {"features_dim": dim or TRANSFORMER_DEFAULT_DIM}}
    cls = custom_class(config)
    return {"features_extractor_class": cls, "features_extractor_kwargs": {"features_dim": dim} if dim else {}}
