"""Env factories for tests that plug in an env by `package.module:factory`."""

from prefrl.envs.point_reach import PointReachEnv


def not_an_env() -> int:
    return 42


def needs_an_argument(size):  # type: ignore[no-untyped-def]
    return PointReachEnv(size=size)
