"""What loading a model as data costs, against stable-baselines3's own (pickle) load, in one run.

    python bench/model_load.py [--repeats 50]

The same model zip (rl-module's: SB3's entries and the description) is loaded, in this process, by
`cls.load(BytesIO(zip))` (SB3 unpickles its data: how every loader read a model before) and by
`artifact.load` (the data rebuilt from the description, nothing unpickled), the two alternating; then the
whole hotswap read path, the checksum included, without and with registry.trustedKeys (the signature
verified); and at save time, the description (`artifact.model_bytes` against `model.save`) and the
signature (`artifact.sign`). Models: PPO MLP on CartPole-v1 and PPO NatureCNN on 84x84x3 images.
Medians in ms; the ratio is to SB3's load (for artifact.load) and to the hotswap path before (for the
paths after). Target: the hotswap path after within 1.10 x of before (the description is a few kB of
JSON); signing and verifying a few ms for a small model (model-signing hashes the whole file).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import median


def _image_env() -> Any:
    import gymnasium as gym
    import numpy as np

    class Frames(gym.Env):  # type: ignore[type-arg]
        """Atari-sized frames (84x84x3): only the spaces matter here."""

        observation_space = gym.spaces.Box(0, 255, shape=(84, 84, 3), dtype=np.uint8)
        action_space = gym.spaces.Discrete(4)

        def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action: Any) -> Any:
            return self.observation_space.sample(), 0.0, False, True, {}

    return Frames()


def models() -> dict[str, Any]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    cartpole = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0), norm_reward=False)
    return {"ppo-mlp CartPole-v1": (PPO("MlpPolicy", cartpole, n_steps=64, seed=0, device="cpu").learn(64), cartpole),
            "ppo-cnn 84x84x3": (PPO("CnnPolicy", make_vec_env(_image_env, n_envs=1, seed=0), n_steps=64, batch_size=32,
                                    seed=0, device="cpu").learn(64), None)}


def timed(rounds: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median ms of each function, the functions alternating within each repeat, in a new order each
    time (after one warm-up): what runs first in a round runs on warmer caches."""
    times: dict[str, list[float]] = {name: [] for name in rounds}
    for function in rounds.values():
        function()
    order = list(rounds.items())
    for repeat in range(repeats):
        random.Random(repeat).shuffle(order)
        for name, function in order:
            started = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from rl_module import artifact

    with tempfile.TemporaryDirectory(prefix="rl-bench-keys-") as folder:  # a throwaway key pair, deleted after
        private, public = Path(folder) / "trainer.pem", Path(folder) / "trainer.pub.pem"
        artifact.generate_key_pair(private, public)
        print(f"{'model':22} {'step':44} {'ms':>8} {'ratio':>6}")
        for name, (model, venv) in models().items():
            bench_model(name, model, venv, private, public, args.repeats)


def bench_model(name: str, model: Any, venv: Any, private: Path, public: Path, repeats: int) -> None:
    from rl_module import artifact

    cls = type(model)
    stats = artifact.stats_bytes(venv) if venv is not None else None
    pickled_stats = pickle.dumps(venv) if venv is not None else None
    stats_digest = hashlib.sha256(stats).hexdigest() if stats is not None else None
    saved = artifact.model_bytes(model, stats_digest)
    signature = artifact.sign(saved, private).text
    digest = hashlib.sha256(saved).hexdigest()

    def before() -> Any:  # read_verified's checksum, then SB3's load and the pickled statistics
        assert hashlib.sha256(saved).hexdigest() == digest
        if pickled_stats is not None:
            pickle.loads(pickled_stats)  # noqa: S301 - our own bytes
        return cls.load(io.BytesIO(saved), device="cpu")

    def after(trusted: bool) -> Any:  # read_verified (checksum, description, signature), then artifact.load
        assert hashlib.sha256(saved).hexdigest() == digest
        artifact.check_stats(saved, stats)
        if trusted:
            artifact.verify(saved, signature, [public])
        if stats is not None:
            artifact.normalizer(stats)
        return artifact.load(saved, cls.__name__.lower(), device="cpu")

    def sb3_save() -> bytes:
        buffer = io.BytesIO()
        model.save(buffer)
        return buffer.getvalue()

    sb3, ours = "SB3 load (unpickles its data)", "artifact.load (from the description)"
    old, new, new_trusted = "hotswap read+load, before", "hotswap read+load, after", "hotswap read+load, trustedKeys"
    loads = timed({sb3: lambda: cls.load(io.BytesIO(saved), device="cpu"),
                   ours: lambda: artifact.load(saved, cls.__name__.lower(), device="cpu"),
                   old: before, new: lambda: after(False), new_trusted: lambda: after(True)}, repeats)
    saves = timed({"save: SB3 model.save": sb3_save,
                   "save: artifact.model_bytes (+description)": lambda: artifact.model_bytes(model, stats_digest),
                   "sign (artifact.sign)": lambda: artifact.sign(saved, private),
                   "verify (artifact.verify, 1 trusted key)": lambda: artifact.verify(saved, signature, [public])},
                  repeats)
    for step, base in ((sb3, sb3), (ours, sb3), (old, old), (new, old), (new_trusted, old)):
        print(f"{name:22} {step:44} {loads[step]:8.2f} {loads[step] / loads[base]:6.3f}")
    for step, ms in saves.items():
        print(f"{name:22} {step:44} {ms:8.2f}")
    print(f"{name:22} {'(zip size)':44} {len(saved) / 1024:7.0f}k")

if __name__ == "__main__":
    main()
