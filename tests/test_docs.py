"""The docs must stay true: custom-environments.md's code and commands are run here as a newcomer would, and
benchmarks.md's tables are what their result rows give."""

import re
import subprocess
import sys
from pathlib import Path

from prefrl.interfaces.doc_tables import update_doc_tables

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "custom-environments.md"


def test_benchmark_tables_are_generated_from_their_rows():
    stale = update_doc_tables(ROOT / "docs" / "benchmarks.md", ROOT, check=True)
    assert stale == [], f"tables {stale} of docs/benchmarks.md differ from their rows: run scripts/benchmark_tables.py"


def test_custom_environment_walkthrough_trains_an_agent(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    (tmp_path / "my_envs").mkdir()
    (tmp_path / "my_envs" / "__init__.py").write_text("")
    (tmp_path / "my_envs" / "balloon.py").write_text(blocks[0] + "\n\n" + blocks[1])
    prefrl = [sys.executable, "-c", "import sys; from prefrl.interfaces.cli import main; sys.exit(main())"]

    check = subprocess.run([*prefrl, "check-env", "my_envs.balloon:make_balloon"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    expected = re.search(r"```\n(\[ok.*?=> ready for prefrl)\n```", DOC.read_text(), re.S)
    assert expected is not None
    for line in expected.group(1).splitlines():  # the doc shows exactly what the command prints (timing aside)
        if "ms for one" not in line:
            assert line in check.stdout, line

    # the doc's train command, at half its budget; learning from ~-90 (random) must be clear already
    train = subprocess.run([*prefrl, "train", "--env", "my_envs.balloon:make_balloon", "--steps", "30000",
                            "--labels", "200", "--out", "runs/balloon", "--agent.n-steps", "256",
                            "--agent.batch-size", "128", "--agent.learning-rate", "0.001", "--no-progress",
                            "--video-steps", "20", "--eval-episodes", "10"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert train.returncode == 0, train.stderr[-2000:]
    final = float(re.search(r"final true return: (-?[\d.]+)", train.stdout).group(1))  # type: ignore[union-attr]
    assert final > -40, train.stdout
    assert (tmp_path / "runs" / "balloon" / "agent.mp4").exists()
