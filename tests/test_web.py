"""The web page: its JSON API through FastAPI's TestClient, and the real page in headless Chromium."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web page needs its extra: pip install 'prefrl[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from prefrl.core.data import Answer  # noqa: E402
from prefrl.core.store import PreferenceStore  # noqa: E402
from prefrl.gym.render import ClipRenderer, clip_paths, save_clip, write_mp4  # noqa: E402
from prefrl.interfaces.cli import main  # noqa: E402
from prefrl.interfaces.web.app import create_app  # noqa: E402
from tests.conftest import make_clip  # noqa: E402

ENV = "prefrl/PointReach-v0"
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _run_with_queries(run: Path, rng: np.random.Generator, n: int, videos: bool = True) -> PreferenceStore:
    """A run directory with n open queries; with `videos`, each clip has a (tiny) rendered mp4."""
    store = PreferenceStore(run / "prefs.sqlite", env_id=ENV)
    (run / "clips").mkdir(exist_ok=True)
    template = run / "clips" / "template.mp4"
    write_mp4(template, (rng.random((4, 16, 16, 3)) * 255).astype(np.uint8), fps=20)
    for _ in range(n):
        ids = [store.add_clip(make_clip(rng, length=4, obs_dim=4)) for _ in range(2)]
        store.add_query(ids[0], ids[1], env_step=0)
        if videos:
            for cid in ids:
                shutil.copy(template, clip_paths(run / "clips", cid)[1])
    return store


@pytest.fixture
def web(tmp_path, rng):
    """(store, make_client(double_share), {name: auth headers}) on a run with 6 open queries."""
    store = _run_with_queries(tmp_path, rng, 6)
    headers = {name: {"Authorization": f"Bearer {store.add_labeler(name)}"} for name in ("alice", "bob")}

    def client(double_share: float = 0.0) -> TestClient:
        return TestClient(create_app(tmp_path, double_share=double_share, render_worker=False))

    return store, client, headers


def test_requests_without_a_valid_token_get_401(web):
    _, client, headers = web
    c = client()
    for path in ("/api/next", "/api/status", "/clips/1.mp4"):
        assert c.get(path).status_code == 401
        r = c.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert c.post("/api/label", json={"query_id": 1, "answer": "left"}).status_code == 401
    assert c.post("/api/undo").status_code == 401
    assert c.get("/").status_code == 200  # the page loads, then asks for the token
    r = c.get("/clips/1.mp4", headers=headers["alice"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4" and r.content[4:8] == b"ftyp"


def test_next_is_204_on_an_empty_store(tmp_path):
    store = PreferenceStore(tmp_path / "prefs.sqlite", env_id=ENV)
    token = store.add_labeler("alice")
    c = TestClient(create_app(tmp_path, render_worker=False))
    r = c.get("/api/next", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204 and int(r.headers["Retry-After"]) > 0


def test_a_label_is_stored_under_the_labeller_with_the_time_it_was_shown(web):
    store, client, headers = web
    before = time.time()
    q = client().get("/api/next", headers=headers["alice"]).json()
    assert q["left"].startswith("/clips/") and not q["check"]
    # a new server (a restart) still knows when the query was handed out: the claim is in the store
    r = client().post("/api/label", json={"query_id": q["query_id"], "answer": "left"}, headers=headers["alice"])
    assert r.status_code == 200 and r.json()["labeler"] == "alice"
    [label] = store.labels()
    assert (label.query_id, label.answer, label.labeler) == (q["query_id"], Answer.LEFT, "alice")
    assert label.shown is not None and before <= label.shown <= label.created
    status = client().get("/api/status", headers=headers["alice"]).json()
    assert status == {"labeler": "alice", "env_id": ENV, "given": 1, "open": 5, "labels": 1, "asked": 6}


def test_two_labellers_are_shown_different_queries(web):
    _, client, headers = web
    c = client()
    a = c.get("/api/next", headers=headers["alice"]).json()["query_id"]
    b = c.get("/api/next", headers=headers["bob"]).json()["query_id"]
    assert a != b
    assert c.get("/api/next", headers=headers["alice"]).json()["query_id"] == a  # a reload shows the same pair


def test_undo_withdraws_the_label_and_the_pair_comes_back(web):
    store, client, headers = web
    c = client()
    q = c.get("/api/next", headers=headers["alice"]).json()["query_id"]
    c.post("/api/label", json={"query_id": q, "answer": "right"}, headers=headers["alice"])
    assert c.get("/api/next", headers=headers["alice"]).json()["query_id"] != q
    r = c.post("/api/undo", headers=headers["alice"]).json()
    assert (r["query_id"], r["answer"], r["next"]["query_id"]) == (q, "right", q)
    assert store.labels() == [] and store.is_open(q)
    assert c.post("/api/undo", headers=headers["alice"]).status_code == 204  # nothing left to undo


def test_only_queries_with_both_videos_rendered_are_handed_out(web):
    store, client, headers = web
    first, second = store.pending_queries()[:2]
    clip_paths(store.path.parent / "clips", first.right_id)[1].unlink()
    c = client()
    assert c.get("/api/next", headers=headers["alice"]).json()["query_id"] == second.id
    for mp4 in (store.path.parent / "clips").glob("*.mp4"):
        mp4.unlink()
    r = c.get("/api/next", headers=headers["bob"])
    assert r.status_code == 204 and "Retry-After" in r.headers


def test_a_double_share_query_is_checked_by_a_second_labeller(web):
    store, client, headers = web
    c = client(double_share=1.0)
    a = c.get("/api/next", headers=headers["alice"]).json()
    c.post("/api/label", json={"query_id": a["query_id"], "answer": "left"}, headers=headers["alice"])
    b = c.get("/api/next", headers=headers["bob"]).json()  # bob's first answer is to a new query
    assert b["query_id"] != a["query_id"] and not b["check"]
    c.post("/api/label", json={"query_id": b["query_id"], "answer": "equal"}, headers=headers["bob"])
    check = c.get("/api/next", headers=headers["bob"]).json()  # then alice's answer comes to him as a check
    assert check["query_id"] == a["query_id"] and check["check"]
    c.post("/api/label", json={"query_id": a["query_id"], "answer": "right"}, headers=headers["bob"])
    [(standing, second)] = store.checks()
    assert (standing.labeler, standing.answer, second.labeler, second.answer) == ("alice", "left", "bob", "right")
    assert second.shown is not None
    assert [lab.labeler for lab in store.labels()] == ["alice", "bob"]  # a check is not a label to learn from


def test_the_double_share_is_a_fixed_set_of_queries(web):
    store, client, headers = web
    c = client(double_share=0.5)
    for q in store.pending_queries():  # alice answers everything; bob is then offered only the share
        c.post("/api/label", json={"query_id": q.id, "answer": "left"}, headers=headers["alice"])
    offered = []
    while (r := c.get("/api/next", headers=headers["bob"])).status_code == 200:
        offered.append(r.json()["query_id"])
        c.post("/api/label", json={"query_id": offered[-1], "answer": "left"}, headers=headers["bob"])
    share = [q for q in range(1, 7) if PreferenceStore.in_check_share(q, 0.5)]
    assert offered == share and 0 < len(share) < 6
    assert len(store.checks()) == len(share)


def test_a_bad_answer_gets_422(web):
    _, client, headers = web
    c = client()
    assert c.post("/api/label", json={"query_id": 1, "answer": "up"}, headers=headers["alice"]).status_code == 422
    assert c.post("/api/label", json={"answer": "left"}, headers=headers["alice"]).status_code == 422
    assert c.post("/api/label", json={"query_id": 99, "answer": "left"}, headers=headers["alice"]).status_code == 404


def test_labelers_add_prints_a_token_that_the_store_knows(web, capsys):
    store, _, _ = web
    assert main(["labelers", "add", str(store.path.parent), "carol"]) == 0
    token = capsys.readouterr().out.split()[1]
    assert store.labeler_of(token) == "carol" and "carol" in store.labelers()
    assert main(["labelers", "add", str(store.path.parent)]) == 2  # no name: one line naming the fix


def test_the_render_worker_draws_clips_for_the_server(tmp_path, rng):
    """With the worker on (as `prefrl serve` runs it), a query with no video yet is handed out once drawn."""
    store = PreferenceStore(tmp_path / "prefs.sqlite", env_id="tests.factories:make_corridor")
    frames = np.zeros((5, 32, 64, 3), dtype=np.uint8)
    ids = [store.add_clip(make_clip(rng, length=5, obs_dim=1, act_dim=1, frames=frames)) for _ in range(2)]
    store.add_query(ids[0], ids[1], env_step=0)
    auth = {"Authorization": f"Bearer {store.add_labeler('alice')}"}
    with TestClient(create_app(tmp_path, render_ahead=2)) as c:
        deadline = time.time() + 30
        while (r := c.get("/api/next", headers=auth)).status_code == 204 and time.time() < deadline:
            time.sleep(0.2)
        assert r.status_code == 200, "the render worker drew nothing in 30 s"
        assert c.get(r.json()["left"], headers=auth).content[4:8] == b"ftyp"


# -- the real page in a real browser -------------------------------------------------------------------------------
def _chromium() -> str:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        reason = "no chromium binary (apt-get install chromium, or run scripts/install-system-deps.sh)"
        print(reason)
        pytest.skip(reason)
    return exe


@pytest.fixture
def served(tmp_path):
    """A real uvicorn server (on a free port, in a thread) on PointReach clips drawn by the real recorder and
    renderer; yields (base URL, store, {name: token})."""
    import uvicorn

    from prefrl.gym.vec import make_vec_env
    from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper

    venv = make_vec_env(ENV, 2, seed=0)
    rec = ClipRecorder(2, clip_length=20)
    w = RewardVecEnvWrapper(venv, None, rec)
    w.reset()
    for _ in range(150):
        w.step(np.stack([w.action_space.sample() for _ in range(2)]))
    store = PreferenceStore(tmp_path / "prefs.sqlite", env_id=ENV)
    renderer = ClipRenderer(ENV)
    (tmp_path / "clips").mkdir()
    clips = list(rec.clips)[:8]
    assert len(clips) == 8
    for k in range(4):
        ids = [store.add_clip(c) for c in clips[2 * k: 2 * k + 2]]
        for cid, c in zip(ids, clips[2 * k: 2 * k + 2]):
            save_clip(tmp_path / "clips", cid, renderer.frames(c), renderer.fps)
        store.add_query(ids[0], ids[1], env_step=0)
    tokens = {name: store.add_labeler(name) for name in ("alice", "bob")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path, double_share=0.0, render_worker=False),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store, tokens
    server.should_exit = True
    thread.join(timeout=5)


_PLAYING = """() => { const v = [...document.querySelectorAll('video')];
  return document.body.dataset.queryId && v.length == 2 && v.every(x => x.src.startsWith('blob:') &&
         x.readyState >= 2 && x.currentTime > 0 && !x.paused); }"""


def test_the_page_in_a_real_browser(served, tmp_path):
    exe = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    base, store, tokens = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        try:
            a = browser.new_page(viewport={"width": 1180, "height": 680})
            a.goto(f"{base}/?token={tokens['alice']}")
            a.wait_for_function(_PLAYING, timeout=15_000)  # both H.264 clips decode and play, from blob URLs
            assert "token" not in a.url and a.evaluate("localStorage.getItem('prefrl-token')") == tokens["alice"]
            a.wait_for_function("() => document.getElementById('counter').textContent.includes('open')")
            shots = DOCS if os.environ.get("PREFRL_UPDATE_SCREENSHOTS") else tmp_path  # the docs' copy on demand
            a.screenshot(path=str(shots / "web-compare.png"))
            assert (shots / "web-compare.png").stat().st_size > 20_000  # two clips drawn, not a blank page

            first = int(a.evaluate("document.body.dataset.queryId"))
            a.keyboard.press("ArrowLeft")
            a.wait_for_function(f"() => document.body.dataset.queryId && document.body.dataset.queryId != {first}")
            second = int(a.evaluate("document.body.dataset.queryId"))
            a.click("button[data-answer=right]")
            a.wait_for_function(f"() => document.body.dataset.queryId && document.body.dataset.queryId != {second}")
            held = int(a.evaluate("document.body.dataset.queryId"))
            given = {(lab.query_id, lab.answer) for lab in store.labels() if lab.labeler == "alice"}
            assert given == {(first, Answer.LEFT), (second, Answer.RIGHT)}
            assert all(lab.shown is not None for lab in store.labels())

            b = browser.new_context().new_page()  # another person: no token yet, so the page asks for it
            b.goto(base)
            b.fill("#token", tokens["bob"])
            b.press("#token", "Enter")
            b.wait_for_function(_PLAYING, timeout=15_000)
            assert int(b.evaluate("document.body.dataset.queryId")) not in {first, second, held}
            # the status line (fetched beside the clips, so it may land after them) names the labeller
            b.wait_for_function("() => document.getElementById('who').textContent == 'bob'", timeout=15_000)
        finally:
            browser.close()
