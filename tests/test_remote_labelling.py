"""The whole path past one machine: `prefrl train --store postgresql://...` in one process, `prefrl serve` on the
same database in another, and a labeller answering over HTTP with a token; the run trains on their labels."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web page needs its extra: pip install 'prefrl[web]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, token: str, body: dict | None = None) -> tuple[int, dict | None]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, None


def test_a_run_on_postgresql_trains_on_labels_given_through_the_web_page(tmp_path, pg_server):
    from prefrl.core.store import open_store

    url, run, port = pg_server.create_db(), tmp_path / "remote-run", _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    prefrl = [sys.executable, "-m", "prefrl"]
    trainer = subprocess.Popen(prefrl + ["train", "--env", "prefrl/PointReach-v0", "--steps", "8192", "--labels", "12",
                                         "--teacher", "human", "--no-window", "--store", url, "--out", str(run),
                                         "--video-steps", "0", "--eval-episodes", "1", "--no-progress"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = None
    try:
        deadline = time.time() + 120
        while not (run / "config.json").exists() and time.time() < deadline:
            time.sleep(0.2)
        token = open_store(run, url).add_labeler("remote")
        server = subprocess.Popen(prefrl + ["serve", str(run), "--store", url, "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base, answered = f"http://127.0.0.1:{port}", 0
        while trainer.poll() is None and time.time() < deadline + 180:
            try:
                status, query = _call(f"{base}/api/next", token)
            except (urllib.error.URLError, ConnectionError):  # the server is still starting
                time.sleep(0.3)
                continue
            if status != 200 or query is None:
                time.sleep(0.3)
                continue
            status, _ = _call(f"{base}/api/label", token, {"query_id": query["query_id"], "answer": "left"})
            answered += status == 200
        out, _ = trainer.communicate(timeout=120)
    finally:
        for proc in (trainer, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert trainer.returncode == 0, out
    store = open_store(run, url)
    labels = store.labels()
    assert answered == 12 == len(labels) and {lab.labeler for lab in labels} == {"remote"}
    assert all(lab.shown is not None for lab in labels)  # the server recorded when each pair was handed out
    summary = json.loads((run / "state.json").read_text())["summary"]
    assert summary["labels"] == 12 and not Path(run / "prefs.sqlite").exists()  # everything went to PostgreSQL
