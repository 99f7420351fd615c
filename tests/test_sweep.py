"""`prefrl sweep` on Ray started on this machine: a row per run as it finishes, the table beside them, and a rerun
that skips what it has."""

import json

import pytest

pytest.importorskip("ray")

from prefrl.interfaces.sweep import SweepArgs, run_sweep  # noqa: E402


@pytest.fixture
def local_ray():
    import ray

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
