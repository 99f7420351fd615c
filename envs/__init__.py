"""Environments shipped with prefrl, registered under the `prefrl/` namespace on import.

prefrl/PointReach-v0        a point moving to a goal (tiny, not MuJoCo; the toy task of the fast tests)
prefrl/HopperBackflip-v0    Hopper with no reward for the trick and no termination on falling
prefrl/HalfCheetahOneLeg-v0 HalfCheetah to run forward on its back leg, with no reward for it
"""

from gymnasium.envs.registration import register, registry

_ENVS = {
    "prefrl/PointReach-v0": ("prefrl.envs.point_reach:PointReachEnv", 50),
    "prefrl/HopperBackflip-v0": ("prefrl.envs.backflip:HopperBackflipEnv", 1000),
    "prefrl/HalfCheetahOneLeg-v0": ("prefrl.envs.backflip:HalfCheetahOneLegEnv", 1000),
}

for _id, (_entry, _steps) in _ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=_entry, max_episode_steps=_steps)
