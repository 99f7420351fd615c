"""Environments shipped with prefrl, registered under the `prefrl/` namespace on import."""

from gymnasium.envs.registration import register, registry

if "prefrl/PointReach-v0" not in registry:
    register(id="prefrl/PointReach-v0", entry_point="prefrl.envs.point_reach:PointReachEnv",
             max_episode_steps=50)
