"""The comparison window: two clips side by side, looping in sync; a person says which is better.

It talks to the preference store only. Every answer is committed the moment it is given; queries are
claimed per labeler so several people can label one run at once; a render worker process keeps the next
pairs drawn ahead of the person, so the window never waits on rendering.

Keys: <- left is better, -> right is better, up or = equally good, down or space can't tell (skip),
backspace undo, + / - playback speed, r replay, q or esc quit. Mouse: click a clip to choose it, or the
buttons. Rating mode (``--mode rate``): 1-5 rate the clip, up = good (5), down = bad (1). Ranking mode
(``--mode rank``): 1..k pick the clips from best to worst, backspace takes back the last pick.

Text clips (a text policy's completions) are shown as wrapped text: the prompt on top, the completions side by
side; nothing is rendered for them. While the run waits for the person, the header says so. Opened by a
training run, the window asks on quitting whether the run should go on without the person or stop.
"""

from __future__ import annotations

import getpass
import json
import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # the window makes no sound
import pygame  # noqa: E402

from prefrl.core.data import Answer, Query
from prefrl.core.labels import PERSON_KEY, WAITING_KEY, PersonChoice
from prefrl.core.store import Store, open_store
from prefrl.errors import PrefrlError
from prefrl.gym.environments import make_env
from prefrl.gym.render import clip_paths, playback_fps, prefetch
from prefrl.ui.draw import Button, WindowPainter
from prefrl.ui.ranking import bradley_terry, ranking_set, save_ranking, store_comparisons
from prefrl.ui.text import mono_font

log = logging.getLogger(__name__)

Mode = Literal["compare", "rate", "rank"]
TEXT_ENV = "text"  # the env id of a text policy's store (prefrl.llm.formats.TEXT_ENV; not imported: optional extra)


def is_text_store(store: Store) -> bool:
    """Whether the store holds text clips (prompt and completion) rather than clips of an env."""
    if store.env_id == TEXT_ENV or store.env_id.startswith(TEXT_ENV + ":"):
        return True
    first = store.clip_ids()[:1]
    return bool(first) and store.clip(first[0]).prompt is not None


def parse_waiting(raw: str | None) -> tuple[int, int] | None:
    """(answered, need) from the store's meta 'waiting', or None when the run is not waiting."""
    try:
        value = json.loads(raw or "null")
        return (int(value["answered"]), int(value["need"])) if value else None
    except (ValueError, TypeError, KeyError):
        return None


class LabelApp(WindowPainter):
    """One person's labelling window on a run directory.

    Args:
        run_dir: a run directory holding prefs.sqlite (running or finished).
        labeler: the name stored with every label.
        mode: "compare" two clips, or "rate" one clip at a time.
        ahead: how many queries are claimed and drawn ahead of the person.
        render_worker: start the render worker process (tests that pre-render clips turn it off; a store of text
            clips never needs it).
        asks_on_quit: quitting asks whether the run goes on without the person or stops (set by a training run's
            window: the choice is written to the store's meta "person").
        k: clips ranked at once in "rank" mode.
    """

    def __init__(self, run_dir: Path, labeler: str | None = None, mode: Mode = "compare", ahead: int = 3,
                 size: tuple[int, int] = (1180, 680), render_worker: bool = True, asks_on_quit: bool = False,
                 k: int = 4, store_url: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.store_url = store_url
        self.store = open_store(self.run_dir, store_url)
        self.env_id = self.store.env_id
        self.labeler = labeler or getpass.getuser()
        self.mode: Mode = mode
        self.ahead = ahead
        self.asks_on_quit = asks_on_quit
        self.k = max(2, min(9, k))
        self.clips_dir = self.run_dir / "clips"
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self.text = is_text_store(self.store)
        self.fps = 30.0
        if not self.text:
            probe = make_env(self.env_id)
            self.fps = playback_fps(probe)
            probe.close()

        pygame.init()
        try:
            self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        except pygame.error as e:
            raise PrefrlError(f"cannot open a window ({e}): run on a desktop session, with X forwarding, or under "
                              "`xvfb-run -a`; or label with a synthetic --teacher") from e
        pygame.display.set_caption(f"prefrl: {self.env_id} ({self.labeler})")
        self.font = pygame.font.Font(None, 26)
        self.big = pygame.font.Font(None, 40)
        self.small = pygame.font.Font(None, 21)
        self.mono = mono_font(17)
        self.clock = pygame.time.Clock()

        self.queue: deque[Query] = deque()  # claimed, not yet shown
        self.current: Query | None = None
        self.shown_at = 0.0
        self.shown_wall: float | None = None  # time.time() the current pair (or ranking) was first drawn
        self.rate_side = 0  # rating mode: 0 = left clip of the current query, 1 = right
        self.rated: dict[int, float] = {}
        self.frames: dict[int, np.ndarray] = {}
        self.surfaces: dict[int, list[pygame.Surface]] = {}
        self.texts: dict[int, tuple[str, str]] = {}  # text clip id -> (prompt, completion)
        self.rank_set: list[int] = []  # ranking mode: the clips on screen
        self.rank_order: list[int] = []  # ... and the person's picks so far, best first
        self.rank_scores: dict[int, float] = {}  # Bradley-Terry log-strengths of the clips on screen
        self.waiting: tuple[int, int] | None = None  # (answered, need) while the run waits for the person
        self.dialog = False  # the quit dialog is open
        self.choice: PersonChoice | None = None
        self.drawn: list[str] = []  # every string drawn in the last frame (for tests)
        self.speed = 1.0
        self.answered_at: float | None = None
        self.latencies: list[float] = []  # answer -> next pair on screen, seconds
        self.answered = 0
        self.notice, self.notice_until = "", 0.0
        self.running = True
        self.buttons: list[Button] = []
        self.panels: list[pygame.Rect] = []
        self._stats = {"labels": 0, "asked": 0, "pending": 0, "steps": 0}
        self._stats_at = 0.0
        self._refill_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loader = threading.Thread(target=self._load_frames, daemon=True)
        self._loader.start()
        self._worker: mp.process.BaseProcess | None = None
        self._worker_stop = None
        if render_worker and not self.text:
            ctx = mp.get_context("spawn")
            self._worker_stop = ctx.Event()
            self._worker = ctx.Process(target=prefetch, args=(self.run_dir, self.env_id, ahead * 3,
                                                              self._worker_stop), daemon=True,
                                       kwargs={"store_url": store_url})
            self._worker.start()

    # -- the queue -----------------------------------------------------------------------------
    def _refill(self) -> None:
        if self.mode == "rank":
            self._next_ranking()
            return
        held = {q.id for q in self.queue} | ({self.current.id} if self.current else set())
        while len(self.queue) < self.ahead:
            q = self.store.claim_next(self.labeler, exclude=held)
            if q is None:
                break
            self.queue.append(q)
            held.add(q.id)

    def _wanted(self) -> list[int]:
        """Clips on screen or soon to be: the current pair, the claimed queue, the ranking."""
        pairs = ([self.current] if self.current else []) + list(self.queue)
        return [cid for q in pairs for cid in (q.left_id, q.right_id)] + list(self.rank_set)

    def _load_frames(self) -> None:
        """Background: read rendered clips (or the text of text clips) of queued queries into memory."""
        while not self._stop.is_set():
            with self._lock:
                wanted = [cid for cid in self._wanted() if cid not in self.frames and cid not in self.texts]
            for cid in wanted:
                if self.text:
                    clip = self.store.clip(cid)
                    with self._lock:
                        self.texts[cid] = (clip.prompt or "", clip.completion or "")
                    continue
                npy = clip_paths(self.clips_dir, cid)[0]
                if npy.exists():
                    frames = np.load(npy)
                    with self._lock:
                        self.frames[cid] = frames
            time.sleep(0.01)

    def _have(self, *ids: int) -> bool:
        with self._lock:
            return all(cid in (self.texts if self.text else self.frames) for cid in ids)

    def _ready(self, q: Query) -> bool:
        return self._have(q.left_id, q.right_id)

    def _advance(self) -> None:
        """Show the next query whose clips are drawn (skipping any someone else answered meanwhile)."""
        if self.current is not None or not self.queue or not self._ready(self.queue[0]):
            return
        q = self.queue.popleft()
        if self.store.is_open(q.id):
            self.current = q
            self.rate_side = 0
            self.shown_at = time.perf_counter()
            self.shown_wall = None
            if not self.text:
                for cid in (q.left_id, q.right_id):
                    self._surfaces_of(cid)
        self._forget_unused()

    def _next_ranking(self) -> None:
        """Ranking mode: put the next clips of open queries up to be ranked (with their Bradley-Terry scores)."""
        if self.rank_set:
            return
        ids = ranking_set(self.store, self.k, self.text)
        if len(ids) >= 2:
            self.rank_set, self.rank_order, self.shown_wall = ids, [], None
            self.rank_scores = bradley_terry(store_comparisons(self.store, ids))
            self.shown_at = time.perf_counter()

    def _surfaces_of(self, cid: int) -> list[pygame.Surface]:
        if cid not in self.surfaces:
            with self._lock:
                frames = self.frames[cid]
            self.surfaces[cid] = [pygame.surfarray.make_surface(f.swapaxes(0, 1)) for f in frames]
        return self.surfaces[cid]

    def _prepare_next(self) -> None:
        """While the person watches, turn the next pair's frames into surfaces (one clip per frame drawn),
        so that answering shows the next pair at once."""
        if not self.text and self.queue and self._ready(self.queue[0]):
            todo = [c for c in (self.queue[0].left_id, self.queue[0].right_id) if c not in self.surfaces]
            if todo:
                self._surfaces_of(todo[0])

    def _forget_unused(self) -> None:
        keep = set(self._wanted())
        with self._lock:
            for held in (self.frames, self.texts):
                for cid in [c for c in held if c not in keep]:
                    del held[cid]
        for cid in [c for c in self.surfaces if c not in keep]:
            del self.surfaces[cid]

    # -- answers -------------------------------------------------------------------------------
    def answer(self, answer: Answer) -> None:
        if self.current is None or self.mode != "compare":
            return
        # committed before anything else happens
        self.store.add_label(self.current.id, answer, self.labeler, shown=self.shown_wall or time.time())
        self._notice(f"saved: {answer.value}")
        self._after_answer()

    def rate(self, value: float) -> None:
        if self.current is None or self.mode != "rate":
            return
        cid = (self.current.left_id, self.current.right_id)[self.rate_side]
        self.store.add_rating(cid, value, self.labeler)
        self.rated[cid] = value
        if self.rate_side == 0:
            self.rate_side = 1
            self.shown_at = time.perf_counter()
            return
        left, right = self.rated[self.current.left_id], self.rated[self.current.right_id]
        derived = Answer.LEFT if left > right else Answer.RIGHT if right > left else Answer.EQUAL
        self.store.add_label(self.current.id, derived, self.labeler, shown=self.shown_wall or time.time())
        self._notice(f"saved: ratings {left:g} / {right:g}")
        self._after_answer()

    def pick(self, n: int) -> None:
        """Ranking mode: the clip numbered `n` (from 1) is the next best; the last one left is the worst. A complete
        ranking is saved at once, as its k(k-1)/2 comparisons."""
        if self.mode != "rank" or not 1 <= n <= len(self.rank_set) or not self._have(*self.rank_set):
            return
        cid = self.rank_set[n - 1]
        if cid in self.rank_order:
            return
        self.rank_order.append(cid)
        if len(self.rank_order) == len(self.rank_set) - 1:
            self.rank_order += [c for c in self.rank_set if c not in self.rank_order]
            added = save_ranking(self.store, self.rank_order, self.labeler, shown=self.shown_wall or time.time())
            self._notice(f"saved: ranking of {len(self.rank_order)} = {added} comparisons")
            self.answered += added
            self.rank_set, self.rank_order = [], []
            self._stats_at = self._refill_at = 0.0
            self._forget_unused()

    def _after_answer(self) -> None:
        self.answered += 1
        self.answered_at = time.perf_counter()
        self.current = None
        self._stats_at = 0.0
        self._refill_at = 0.0  # claim a replacement at once, so the queue stays full
        self._advance()

    def undo(self) -> None:
        if self.mode == "rank":
            if self.rank_order:
                self.rank_order.pop()
            else:
                self._notice("a saved ranking stays: nothing to undo here")
            return
        if self.mode == "rate" and self.current is not None and self.rate_side == 1:
            self.store.undo_last_rating(self.labeler)
            self.rate_side = 0
            return
        label = self.store.undo_last_label(self.labeler)
        if label is None:
            return
        if self.mode == "rate":
            for _ in range(2):
                self.store.undo_last_rating(self.labeler)
        if self.current is not None:
            self.queue.appendleft(self.current)
            self.current = None
        self.queue.appendleft(self.store.query(label.query_id))
        self.answered = max(0, self.answered - 1)
        self._notice(f"undone: {label.answer.value}; that pair is back")
        self._stats_at = 0.0
        self._advance()

    def _notice(self, text: str) -> None:
        self.notice, self.notice_until = text, time.perf_counter() + 1.5

    def quit(self) -> None:
        """Leave; a training run's window first asks what the run should do without the person."""
        if self.asks_on_quit and not self.dialog:
            self.dialog = True
            return
        self.running = False

    def leave(self, choice: PersonChoice) -> None:
        """The person's choice on leaving, written to the store before the window closes."""
        self.store.set_meta(PERSON_KEY, choice)
        self.choice, self.running = choice, False

    # -- events --------------------------------------------------------------------------------
    def _actions(self) -> dict[str, Callable[[], None]]:
        return {"left": lambda: self.answer(Answer.LEFT), "right": lambda: self.answer(Answer.RIGHT),
                "equal": lambda: self.answer(Answer.EQUAL), "skip": lambda: self.answer(Answer.SKIP),
                "undo": self.undo, "faster": lambda: self._set_speed(self.speed * 1.5),
                "slower": lambda: self._set_speed(self.speed / 1.5), "replay": self._replay, "quit": self.quit,
                **{f"rate{k}": partial(self.rate, float(k)) for k in range(1, 6)},
                "good": lambda: self.rate(5.0), "bad": lambda: self.rate(1.0),
                **{f"pick{n}": partial(self.pick, n) for n in range(1, 10)},
                "gone": partial(self.leave, "gone"), "stop": partial(self.leave, "stop"),
                "keep": lambda: setattr(self, "dialog", False)}

    def _set_speed(self, speed: float) -> None:
        self.speed = float(np.clip(speed, 0.25, 4.0))

    def _replay(self) -> None:
        self.shown_at = time.perf_counter()

    def key_action(self, event: pygame.event.Event) -> str | None:
        k, ch = event.key, getattr(event, "unicode", "")
        if self.dialog:
            return {pygame.K_g: "gone", pygame.K_s: "stop", pygame.K_ESCAPE: "keep"}.get(k)
        if k in (pygame.K_q, pygame.K_ESCAPE):
            return "quit"
        if k == pygame.K_BACKSPACE:
            return "undo"
        if ch == "+" or k in (pygame.K_PLUS, pygame.K_KP_PLUS):
            return "faster"
        if ch == "-" or k in (pygame.K_MINUS, pygame.K_KP_MINUS):
            return "slower"
        if k == pygame.K_r:
            return "replay"
        if self.mode == "rank":
            n = k - pygame.K_0 if pygame.K_1 <= k <= pygame.K_9 else int(ch) if ch.isdigit() else 0
            return f"pick{n}" if 1 <= n <= 9 else None
        if self.mode == "rate":
            if ch in "12345" and ch:
                return f"rate{ch}"
            return {pygame.K_UP: "good", pygame.K_DOWN: "bad"}.get(k)
        if ch == "=" or k in (pygame.K_UP, pygame.K_EQUALS):
            return "equal"
        return {pygame.K_LEFT: "left", pygame.K_RIGHT: "right", pygame.K_DOWN: "skip", pygame.K_SPACE: "skip"}.get(k)

    def handle(self, event: pygame.event.Event) -> None:
        action = None
        if event.type == pygame.QUIT:
            # closing the window again while it asks: go on without the person (the run is never left waiting)
            action = "gone" if self.dialog else "quit"
        elif event.type == pygame.KEYDOWN:
            action = self.key_action(event)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = next((b.action for b in self.buttons if b.rect.collidepoint(event.pos)), None)
            if action is None and not self.dialog and self.mode in ("compare", "rank"):
                names = ("left", "right") if self.mode == "compare" else [f"pick{n + 1}" for n in range(9)]
                action = next((name for name, r in zip(names, self.panels) if r.collidepoint(event.pos)), None)
        if action is not None:
            self._actions()[action]()

    # -- one frame -----------------------------------------------------------------------------
    def step(self) -> bool:
        """Handle events, keep the queue full, draw one frame. False once the person has quit."""
        for event in pygame.event.get():
            self.handle(event)
            if not self.running:
                return False
        now = time.perf_counter()
        if now >= self._refill_at:
            self._refill()
            self._refill_at = now + 0.2
        self._advance()
        self.draw()
        self._prepare_next()
        if self.answered_at is not None and self.current is not None:
            self.latencies.append(time.perf_counter() - self.answered_at)
            self.answered_at = None
        return True

    def run(self, max_seconds: float | None = None) -> None:
        t0 = time.time()
        try:
            while self.step():
                if max_seconds is not None and time.time() - t0 > max_seconds:
                    break
                self.clock.tick(60)
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        if self._worker is not None and self._worker_stop is not None:
            self._worker_stop.set()
            self._worker.join(timeout=5)
            if self._worker.is_alive():
                self._worker.terminate()
        self.store.release_claims(self.labeler)
        pygame.quit()

    # -- what the window says ------------------------------------------------------------------
    def _stats_now(self) -> dict[str, int]:
        now = time.perf_counter()
        if now >= self._stats_at:
            state_path = self.run_dir / "state.json"
            steps = 0
            if state_path.exists():
                try:
                    steps = int(json.loads(state_path.read_text()).get("env_steps", 0))
                except (ValueError, OSError):
                    steps = self._stats["steps"]
            self._stats = {"labels": self.store.count_labels(), "asked": self.store.count_queries(),
                           "pending": self.store.count_pending(), "steps": steps}
            self.waiting = parse_waiting(self.store.meta(WAITING_KEY))
            self._stats_at = now + 0.5
        return self._stats

    def header(self) -> list[str]:
        """The header's lines: the run and labeler; the counts; while the run waits, what it waits for."""
        s = self._stats_now()
        lines = [f"prefrl  |  {self.env_id}  |  labeler: {self.labeler}",
                 f"labels {s['labels']} / {s['asked']} asked    queue {s['pending']}    agent steps {s['steps']:,}"
                 + ("" if self.text else f"    speed {self.speed:.2g}x")]
        if self.waiting is not None:
            lines.append(f"waiting for your labels: {self.waiting[0]} of {self.waiting[1]}  -  the trainer waits "
                         "for you")
        return lines

    def status(self) -> tuple[str, str]:
        """What the centre says while no pair is on screen: (message, detail)."""
        s = self._stats_now()
        dots = "." * (1 + int(time.perf_counter() * 2) % 3)
        if self.waiting is not None:
            return (f"waiting for your labels: {self.waiting[0]} of {self.waiting[1]}",
                    "the trainer waits for you; the next pair is being drawn")
        if s["pending"] == 0 and not self.queue:
            return f"waiting for the agent{dots}", "no open queries: new clips arrive as the agent trains"
        return f"rendering clips{dots}", f"{s['pending']} queries open; the next pair is being drawn"
