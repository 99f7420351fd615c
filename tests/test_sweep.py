"""`prefrl sweep` on Ray started on this machine: a row per run as it finishes, the table beside them, and a rerun
that skips what it has."""

import json

import pytest

pytest.importorskip("ray")

from prefrl.interfaces.sweep import SweepArgs, run_sweep  # noqa: E402


@pytest.fixture
def local_ray(monkeypatch):
    import ray

    monkeypatch.setenv("RAY_worker_register_timeout_seconds", "300")  # a loaded machine starts workers slowly
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_tiny_sweep_writes_a_row_per_run_and_skips_them_when_run_again(tmp_path, local_ray):
    args = SweepArgs(envs="prefrl/PointReach-v0", seeds=2, arms="true,oracle-20", steps=2048, out=tmp_path / "sweep",
                     evaluations=0)
    rows = run_sweep(args)
    assert sorted((r["arm"], r["seed"]) for r in rows) == [("oracle-20", 0), ("oracle-20", 1), ("true", 0), ("true", 1)]
    lines = (tmp_path / "sweep" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["env_steps"] >= 2048 for line in lines)
    assert all(json.loads(line)["labels"] == 20 for line in lines if '"oracle-20"' in line)
    table = (tmp_path / "sweep" / "results.md").read_text()
    assert "| prefrl/PointReach-v0 | oracle-20 | 2 |" in table
    assert run_sweep(args) == []  # everything is there: nothing runs again
    assert len((tmp_path / "sweep" / "results.jsonl").read_text().splitlines()) == 4


def test_a_job_whose_worker_dies_is_retried_and_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """The run's process dies (os._exit) after its first checkpoints; Ray starts the task again, and the run goes on
    from where it was saved rather than from scratch."""
    import os

    import ray

    monkeypatch.setenv("RAY_worker_register_timeout_seconds", "300")  # a loaded machine starts workers slowly
    marker = tmp_path / "died"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PREFRL_TEST_DIE_ONCE": str(marker),
                                       "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}})
    try:
        args = SweepArgs(envs="tests.factories:make_point_reach_dying_once", seeds=1, arms="oracle-20", steps=3072,
                         out=tmp_path / "sweep", evaluations=0, max_retries=2)
        rows = run_sweep(args)
    finally:
        ray.shutdown()
    assert marker.exists(), "the worker never died: the test did not test a retry"
    assert len(rows) == 1 and rows[0]["env_steps"] >= 3072 and rows[0]["labels"] == 20
    run = tmp_path / "sweep" / "tests.factories:make_point_reach_dying_once" / "oracle-20" / "seed0"
    steps = [int(float(line.split(",")[0])) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[0] < 1536  # one run, continued: its first rows were not started over
