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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from prefrl.ui.ranking import bradley_terry, elo, ranking_set, save_ranking, store_comparisons
from prefrl.ui.text import draw_text, mono_font

log = logging.getLogger(__name__)

Mode = Literal["compare", "rate", "rank"]
BG, PANEL, INK, MUTED, ACCENT, GOOD = (24, 26, 31), (38, 41, 48), (235, 237, 240), (150, 156, 168), (90, 160, 255), (
    80, 200, 120)
WAIT = (255, 190, 70)  # the run waits for the person
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


@dataclass
class Button:
    label: str
    action: str
    rect: pygame.Rect


class LabelApp:
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

    # -- drawing -------------------------------------------------------------------------------
    def _text(self, text: str, pos: tuple[int, int], font: pygame.font.Font | None = None,
              colour: tuple[int, int, int] = INK, anchor: str = "topleft") -> pygame.Rect:
        surf = (font or self.font).render(text, True, colour)
        rect = surf.get_rect(**{anchor: pos})
        self.screen.blit(surf, rect)
        self.drawn.append(text)
        return rect

    def draw(self) -> None:
        w, h = self.screen.get_size()
        self.drawn = []
        self.screen.fill(BG)
        title, counts, *wait = self.header()
        self._text(title, (20, 16))
        self._text(counts, (w - 20, 16), anchor="topright")
        top, bottom = 56, h - 120
        if wait:
            banner = pygame.Rect(20, 46, w - 40, 40)
            pygame.draw.rect(self.screen, WAIT, banner, border_radius=6)
            self._text(wait[0], banner.center, self.big, BG, anchor="center")
            top = banner.bottom + 12
        on_screen = self.current is not None or (bool(self.rank_set) and self._have(*self.rank_set))
        if not on_screen:
            self.panels = []
            msg, sub = self.status()
            centre = (w // 2, (top + bottom) // 2)
            self._text(msg, centre, self.big, WAIT if self.waiting else INK, anchor="center")
            self._text(sub, (centre[0], centre[1] + 36), self.small, MUTED, anchor="center")
        elif self.mode == "rank":
            self._draw_ranking(w, top, bottom)
        else:
            assert self.current is not None
            ids = [self.current.left_id, self.current.right_id]
            active = [self.mode == "compare" or k == self.rate_side for k in range(2)]
            captions = (["<-  LEFT is better", "RIGHT is better  ->"] if self.mode == "compare" else
                        ["rate this one: 1-5" if a else "" for a in active])
            self._draw_panels(ids, w, top, bottom, captions, active)
        self._draw_controls(w, h)
        if self.dialog:
            self._draw_dialog(w, h)
        pygame.display.flip()
        if on_screen and self.shown_wall is None:
            self.shown_wall = time.time()

    def _draw_panels(self, ids: list[int], w: int, top: int, bottom: int, captions: list[str],
                     active: list[bool]) -> None:
        """Clips (or completions) side by side, each in a panel with its caption below; the prompt above text."""
        gap = 20
        if self.text:
            self._text("PROMPT", (gap, top), self.small, MUTED)
            prompt = self.texts[ids[0]][0]
            used = draw_text(self.screen, prompt, pygame.Rect(gap, top + 20, w - 2 * gap, (bottom - top) // 3),
                             self.mono, INK)
            self.drawn.append(prompt)
            top = used.bottom + 16
        n = len(ids)
        panel_w, panel_h = (w - (n + 1) * gap) // n, bottom - top - 44
        self.panels = [pygame.Rect(gap + k * (panel_w + gap), top, panel_w, panel_h) for k in range(n)]
        hover = pygame.mouse.get_pos() if pygame.mouse.get_focused() and not self.dialog else (-1, -1)
        elapsed = (time.perf_counter() - self.shown_at) * self.fps * self.speed
        for k, (rect, cid) in enumerate(zip(self.panels, ids)):
            pygame.draw.rect(self.screen, PANEL, rect, border_radius=8)
            if self.mode != "rate" and rect.collidepoint(hover):
                pygame.draw.rect(self.screen, ACCENT, rect, width=3, border_radius=8)
            if self.text:
                draw_text(self.screen, self.texts[cid][1], rect.inflate(-24, -24), self.mono,
                          INK if active[k] else MUTED)
                self.drawn.append(self.texts[cid][1])
            else:
                surfaces = self._surfaces_of(cid)
                frame = surfaces[int(elapsed) % len(surfaces)]
                scale = min((rect.w - 16) / frame.get_width(), (rect.h - 16) / frame.get_height())
                img = pygame.transform.smoothscale(frame, (int(frame.get_width() * scale),
                                                           int(frame.get_height() * scale)))
                if not active[k]:
                    img.set_alpha(70)
                self.screen.blit(img, img.get_rect(center=rect.center))
            self._text(captions[k], (rect.centerx, rect.bottom + 10), colour=INK if active[k] else MUTED,
                       anchor="midtop")
        if not self.text:
            n_frames = len(self._surfaces_of(ids[0]))
            idx = int(elapsed) % n_frames
            bar = pygame.Rect(gap, bottom - 6, w - 2 * gap, 4)
            pygame.draw.rect(self.screen, PANEL, bar)
            pygame.draw.rect(self.screen, ACCENT, (bar.x, bar.y, int(bar.w * (idx + 1) / n_frames), bar.h))

    def _draw_ranking(self, w: int, top: int, bottom: int) -> None:
        ids, order = self.rank_set, self.rank_order
        captions = []
        for n, cid in enumerate(ids, start=1):
            score = self.rank_scores.get(cid, 0.0)
            place = f"#{order.index(cid) + 1}  " if cid in order else ""
            captions.append(f"{place}[{n}]  BT {score:+.2f}  (Elo {elo(score):.0f})")
        self._draw_panels(ids, w, top, bottom, captions, [cid not in order for cid in ids])
        for rect, cid in zip(self.panels, ids):
            if cid in order:
                pygame.draw.rect(self.screen, GOOD, rect, width=3, border_radius=8)
                self._text(f"#{order.index(cid) + 1}", (rect.right - 10, rect.bottom - 8), self.big, GOOD,
                           anchor="bottomright")

    def _draw_controls(self, w: int, h: int) -> None:
        if self.mode == "compare":
            specs = [("<- Left is better", "left"), ("^ / = Equally good", "equal"), ("v / space Can't tell", "skip"),
                     ("Right is better ->", "right"), ("Backspace Undo", "undo")]
            legend = "keys: <- ->  ^ or =  v or space  backspace undo  + / - speed  r replay  q quit"
        elif self.mode == "rate":
            specs = [(f"{k}", f"rate{k}") for k in range(1, 6)] + [("^ Good (5)", "good"), ("v Bad (1)", "bad"),
                                                                   ("Undo", "undo")]
            legend = "keys: 1-5 rate  ^ good  v bad  backspace undo  + / - speed  r replay  q quit"
        else:
            n = len(self.rank_set) or self.k
            specs = [(f"{k}", f"pick{k}") for k in range(1, n + 1)] + [("Backspace Undo pick", "undo")]
            legend = f"keys: 1-{n} best to worst (the last is implied)  backspace undo pick  q quit"
        gap, y, bh = 12, h - 104, 44
        bw = (w - gap * (len(specs) + 1)) // len(specs)
        self.buttons = []
        mouse = pygame.mouse.get_pos() if pygame.mouse.get_focused() else (-1, -1)
        enabled = self.current is not None or bool(self.rank_set)
        for k, (label, action) in enumerate(specs):
            rect = pygame.Rect(gap + k * (bw + gap), y, bw, bh)
            self.buttons.append(Button(label, action, rect))
            hot = enabled and rect.collidepoint(mouse)
            pygame.draw.rect(self.screen, ACCENT if hot else PANEL, rect, border_radius=6)
            self._text(label, rect.center, colour=INK if enabled or action == "undo" else MUTED, anchor="center")
        self._text(legend, (w // 2, h - 40), self.small, MUTED, anchor="midtop")
        self._text(f"answered this session: {self.answered}", (20, h - 40), self.small, GOOD)
        if time.perf_counter() < self.notice_until:
            self._text(self.notice, (w - 20, h - 40), self.small, GOOD, anchor="topright")

    def _draw_dialog(self, w: int, h: int) -> None:
        """The quit dialog over the window; its three buttons replace the others while it is open."""
        shade = pygame.Surface((w, h), pygame.SRCALPHA)
        shade.fill((0, 0, 0, 170))
        self.screen.blit(shade, (0, 0))
        box = pygame.Rect(0, 0, min(w - 40, 760), 300)
        box.center = (w // 2, h // 2)
        pygame.draw.rect(self.screen, PANEL, box, border_radius=10)
        pygame.draw.rect(self.screen, ACCENT, box, width=2, border_radius=10)
        self._text("Leave labelling?", (box.centerx, box.y + 20), self.big, anchor="midtop")
        self._text("every answer you gave is saved", (box.centerx, box.y + 58), self.small, MUTED, anchor="midtop")
        specs = [("g  Go on without me", "gone", "the agent trains on with your labels so far"),
                 ("s  Stop the run", "stop", "it ends after this chunk and writes its report"),
                 ("esc  Keep labelling", "keep", "back to the clips")]
        mouse = pygame.mouse.get_pos() if pygame.mouse.get_focused() else (-1, -1)
        self.buttons = []
        for k, (label, action, detail) in enumerate(specs):
            rect = pygame.Rect(box.x + 24, box.y + 96 + k * 64, 280, 50)
            self.buttons.append(Button(label, action, rect))
            pygame.draw.rect(self.screen, ACCENT if rect.collidepoint(mouse) else BG, rect, border_radius=6)
            self._text(label, rect.center, anchor="center")
            self._text(detail, (rect.right + 20, rect.centery), self.small, INK, anchor="midleft")


def run_label_app(run_dir: Path, labeler: str | None, mode: Mode, ahead: int, asks_on_quit: bool = False,
                  k: int = 4, store_url: str | None = None) -> int:
    app = LabelApp(run_dir, labeler, mode, ahead, asks_on_quit=asks_on_quit, k=k, store_url=store_url)
    app.run()
    return app.answered


@contextmanager
def label_window(run_dir: Path, labeler: str | None) -> Iterator[mp.process.BaseProcess]:
    """The comparison window on a training run, in its own process for as long as the run lasts: closed when the
    run ends or fails, and it closes itself if the training process is killed. Quitting it asks whether the run
    goes on without the person or stops."""
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_window_process, args=(Path(run_dir), labeler, os.getpid()), name="prefrl-window")
    proc.start()
    try:
        yield proc
    finally:
        if proc.is_alive():
            log.info("the run has ended: closing the labelling window (label on with `prefrl label %s`)", run_dir)
            proc.terminate()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


def _window_process(run_dir: Path, labeler: str | None, trainer_pid: int) -> None:
    def watch() -> None:  # the window never outlives the training process that opened it
        while os.getppid() == trainer_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    run_label_app(run_dir, labeler, "compare", ahead=3, asks_on_quit=True)
