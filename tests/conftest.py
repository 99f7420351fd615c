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


# -- preference-store backends: every store test runs on SQLite and on a real PostgreSQL server -------------
_PG_SKIPPED: list[str] = []


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server in a temp dir for the whole session (tests.pg); skips its tests, saying why, where
    none can start."""
    from tests.pg import PgServer, PgUnavailable

    try:
        server = PgServer.start()
    except PgUnavailable as e:
        _PG_SKIPPED.append(str(e))
        pytest.skip(f"no PostgreSQL server: {e}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(backend, request) -> str | None:
    """The --store of a test's run: None (RUN/prefs.sqlite) or a fresh database on the session's server."""
    if backend == "sqlite":
        return None
    return request.getfixturevalue("pg_server").create_db()


def pytest_terminal_summary(terminalreporter) -> None:
    if _PG_SKIPPED:
        terminalreporter.write_line(f"PostgreSQL store tests skipped: {_PG_SKIPPED[0]}", yellow=True)
