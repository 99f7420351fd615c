"""The comparison window: two clips side by side, looping in sync; a person says which is better.

It talks to the preference store only. Every answer is committed the moment it is given; queries are
claimed per labeler so several people can label one run at once; a render worker process keeps the next
pairs drawn ahead of the person, so the window never waits on rendering.

Keys: <- left is better, -> right is better, up or = equally good, down or space can't tell (skip),
backspace undo, + / - playback speed, r replay, q or esc quit. Mouse: click a clip to choose it, or the
buttons. Rating mode (``--mode rate``): 1-5 rate the clip, up = good (5), down = bad (1).
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
from prefrl.core.store import PreferenceStore
from prefrl.errors import PrefrlError
from prefrl.gym.environments import make_env
from prefrl.gym.render import clip_paths, playback_fps, prefetch

log = logging.getLogger(__name__)

Mode = Literal["compare", "rate"]
BG, PANEL, INK, MUTED, ACCENT, GOOD = (24, 26, 31), (38, 41, 48), (235, 237, 240), (150, 156, 168), (90, 160, 255), (
    80, 200, 120)


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
        render_worker: start the render worker process (tests that pre-render clips turn it off).
    """

    def __init__(self, run_dir: Path, labeler: str | None = None, mode: Mode = "compare", ahead: int = 3,
                 size: tuple[int, int] = (1180, 680), render_worker: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.store = PreferenceStore(self.run_dir / "prefs.sqlite")
        self.env_id = self.store.env_id
        self.labeler = labeler or getpass.getuser()
        self.mode: Mode = mode
        self.ahead = ahead
        self.clips_dir = self.run_dir / "clips"
        self.clips_dir.mkdir(exist_ok=True)
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
        self.clock = pygame.time.Clock()

        self.queue: deque[Query] = deque()  # claimed, not yet shown
        self.current: Query | None = None
        self.shown_at = 0.0
        self.rate_side = 0  # rating mode: 0 = left clip of the current query, 1 = right
        self.rated: dict[int, float] = {}
        self.frames: dict[int, np.ndarray] = {}
        self.surfaces: dict[int, list[pygame.Surface]] = {}
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
        if render_worker:
            ctx = mp.get_context("spawn")
            self._worker_stop = ctx.Event()
            self._worker = ctx.Process(target=prefetch, args=(self.run_dir, self.env_id, ahead * 3,
                                                              self._worker_stop), daemon=True)
            self._worker.start()

    # -- the queue -----------------------------------------------------------------------------
    def _refill(self) -> None:
        held = {q.id for q in self.queue} | ({self.current.id} if self.current else set())
        while len(self.queue) < self.ahead:
            q = self.store.claim_next(self.labeler, exclude=held)
            if q is None:
                break
            self.queue.append(q)
            held.add(q.id)

    def _load_frames(self) -> None:
        """Background: read rendered clips of queued queries into memory (file reads release the GIL)."""
        while not self._stop.is_set():
            with self._lock:
                wanted = [cid for q in ([self.current] if self.current else []) + list(self.queue)
                          for cid in (q.left_id, q.right_id) if cid not in self.frames]
            for cid in wanted:
                npy = clip_paths(self.clips_dir, cid)[0]
                if npy.exists():
                    frames = np.load(npy)
                    with self._lock:
                        self.frames[cid] = frames
            time.sleep(0.01)

    def _ready(self, q: Query) -> bool:
        with self._lock:
            return q.left_id in self.frames and q.right_id in self.frames

    def _advance(self) -> None:
        """Show the next query whose clips are drawn (skipping any someone else answered meanwhile)."""
        if self.current is not None or not self.queue or not self._ready(self.queue[0]):
            return
        q = self.queue.popleft()
        if self.store.is_open(q.id):
            self.current = q
            self.rate_side = 0
            self.shown_at = time.perf_counter()
            for cid in (q.left_id, q.right_id):
                self._surfaces_of(cid)
        self._forget_unused()

    def _surfaces_of(self, cid: int) -> list[pygame.Surface]:
        if cid not in self.surfaces:
            with self._lock:
                frames = self.frames[cid]
            self.surfaces[cid] = [pygame.surfarray.make_surface(f.swapaxes(0, 1)) for f in frames]
        return self.surfaces[cid]

    def _prepare_next(self) -> None:
        """While the person watches, turn the next pair's frames into surfaces (one clip per frame drawn),
        so that answering shows the next pair at once."""
        if self.queue and self._ready(self.queue[0]):
            todo = [c for c in (self.queue[0].left_id, self.queue[0].right_id) if c not in self.surfaces]
            if todo:
                self._surfaces_of(todo[0])

    def _forget_unused(self) -> None:
        keep = {cid for q in ([self.current] if self.current else []) + list(self.queue)
                for cid in (q.left_id, q.right_id)}
        with self._lock:
            for cid in [c for c in self.frames if c not in keep]:
                del self.frames[cid]
        for cid in [c for c in self.surfaces if c not in keep]:
            del self.surfaces[cid]

    # -- answers -------------------------------------------------------------------------------
    def answer(self, answer: Answer) -> None:
        if self.current is None or self.mode != "compare":
            return
        self.store.add_label(self.current.id, answer, self.labeler)  # committed before anything else happens
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
        self.store.add_label(self.current.id, derived, self.labeler)
        self._notice(f"saved: ratings {left:g} / {right:g}")
        self._after_answer()

    def _after_answer(self) -> None:
        self.answered += 1
        self.answered_at = time.perf_counter()
        self.current = None
        self._stats_at = 0.0
        self._refill_at = 0.0  # claim a replacement at once, so the queue stays full
        self._advance()

    def undo(self) -> None:
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
        self.running = False

    # -- events --------------------------------------------------------------------------------
    def _actions(self) -> dict[str, Callable[[], None]]:
        return {"left": lambda: self.answer(Answer.LEFT), "right": lambda: self.answer(Answer.RIGHT),
                "equal": lambda: self.answer(Answer.EQUAL), "skip": lambda: self.answer(Answer.SKIP),
                "undo": self.undo, "faster": lambda: self._set_speed(self.speed * 1.5),
                "slower": lambda: self._set_speed(self.speed / 1.5), "replay": self._replay, "quit": self.quit,
                **{f"rate{k}": partial(self.rate, float(k)) for k in range(1, 6)},
                "good": lambda: self.rate(5.0), "bad": lambda: self.rate(1.0)}

    def _set_speed(self, speed: float) -> None:
        self.speed = float(np.clip(speed, 0.25, 4.0))

    def _replay(self) -> None:
        self.shown_at = time.perf_counter()

    def key_action(self, event: pygame.event.Event) -> str | None:
        k, ch = event.key, getattr(event, "unicode", "")
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
            action = "quit"
        elif event.type == pygame.KEYDOWN:
            action = self.key_action(event)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = next((b.action for b in self.buttons if b.rect.collidepoint(event.pos)), None)
            if action is None and self.mode == "compare":
                action = next((side for side, r in zip(("left", "right"), self.panels) if r.collidepoint(event.pos)),
                              None)
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

    # -- drawing -------------------------------------------------------------------------------
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
            self._stats_at = now + 0.5
        return self._stats

    def _text(self, text: str, pos: tuple[int, int], font: pygame.font.Font | None = None,
              colour: tuple[int, int, int] = INK, anchor: str = "topleft") -> pygame.Rect:
        surf = (font or self.font).render(text, True, colour)
        rect = surf.get_rect(**{anchor: pos})
        self.screen.blit(surf, rect)
        return rect

    def draw(self) -> None:
        w, h = self.screen.get_size()
        self.screen.fill(BG)
        s = self._stats_now()
        self._text(f"prefrl  |  {self.env_id}  |  labeler: {self.labeler}", (20, 16))
        self._text(f"labels {s['labels']} / {s['asked']} asked    queue {s['pending']}    agent steps {s['steps']:,}"
                   f"    speed {self.speed:.2g}x", (w - 20, 16), anchor="topright")
        top, bottom = 56, h - 120
        if self.current is None:
            self.panels = []
            self._draw_status((w // 2, (top + bottom) // 2), s)
        else:
            self._draw_clips(self.current, w, top, bottom)
        self._draw_controls(w, h)
        pygame.display.flip()

    def _draw_status(self, centre: tuple[int, int], s: dict[str, int]) -> None:
        dots = "." * (1 + int(time.perf_counter() * 2) % 3)
        if s["pending"] == 0 and not self.queue:
            msg, sub = f"waiting for the agent{dots}", "no open queries: new clips arrive as the agent trains"
        else:
            msg, sub = f"rendering clips{dots}", f"{s['pending']} queries open; the next pair is being drawn"
        self._text(msg, centre, self.big, anchor="center")
        self._text(sub, (centre[0], centre[1] + 36), self.small, MUTED, anchor="center")

    def _draw_clips(self, current: Query, w: int, top: int, bottom: int) -> None:
        ids = [current.left_id, current.right_id]
        n_frames = len(self.surfaces[ids[0]])
        elapsed = (time.perf_counter() - self.shown_at) * self.fps * self.speed
        idx = int(elapsed) % n_frames
        gap = 20
        panel_w, panel_h = (w - 3 * gap) // 2, bottom - top - 44
        self.panels = [pygame.Rect(gap + k * (panel_w + gap), top, panel_w, panel_h) for k in range(2)]
        hover = pygame.mouse.get_pos() if pygame.mouse.get_focused() else (-1, -1)
        captions = ["<-  LEFT is better", "RIGHT is better  ->"]
        for k, (rect, cid) in enumerate(zip(self.panels, ids)):
            active = self.mode == "compare" or k == self.rate_side
            pygame.draw.rect(self.screen, PANEL, rect, border_radius=8)
            if self.mode == "compare" and rect.collidepoint(hover):
                pygame.draw.rect(self.screen, ACCENT, rect, width=3, border_radius=8)
            frame = self.surfaces[cid][idx]
            scale = min((rect.w - 16) / frame.get_width(), (rect.h - 16) / frame.get_height())
            img = pygame.transform.smoothscale(frame, (int(frame.get_width() * scale), int(frame.get_height() * scale)))
            if not active:
                img.set_alpha(70)
            self.screen.blit(img, img.get_rect(center=rect.center))
            caption = captions[k] if self.mode == "compare" else ("rate this clip: 1-5" if active else "")
            self._text(caption, (rect.centerx, rect.bottom + 10), colour=INK if active else MUTED, anchor="midtop")
        bar = pygame.Rect(gap, bottom - 6, w - 2 * gap, 4)
        pygame.draw.rect(self.screen, PANEL, bar)
        pygame.draw.rect(self.screen, ACCENT, (bar.x, bar.y, int(bar.w * (idx + 1) / n_frames), bar.h))

    def _draw_controls(self, w: int, h: int) -> None:
        if self.mode == "compare":
            specs = [("<- Left is better", "left"), ("^ / = Equally good", "equal"), ("v / space Can't tell", "skip"),
                     ("Right is better ->", "right"), ("Backspace Undo", "undo")]
        else:
            specs = [(f"{k}", f"rate{k}") for k in range(1, 6)] + [("^ Good (5)", "good"), ("v Bad (1)", "bad"),
                                                                   ("Undo", "undo")]
        gap, y, bh = 12, h - 104, 44
        bw = (w - gap * (len(specs) + 1)) // len(specs)
        self.buttons = []
        mouse = pygame.mouse.get_pos() if pygame.mouse.get_focused() else (-1, -1)
        enabled = self.current is not None
        for k, (label, action) in enumerate(specs):
            rect = pygame.Rect(gap + k * (bw + gap), y, bw, bh)
            self.buttons.append(Button(label, action, rect))
            hot = enabled and rect.collidepoint(mouse)
            pygame.draw.rect(self.screen, ACCENT if hot else PANEL, rect, border_radius=6)
            self._text(label, rect.center, colour=INK if enabled or action == "undo" else MUTED, anchor="center")
        legend = "keys: <- ->  ^ or =  v or space  backspace undo  + / - speed  r replay  q quit"
        if self.mode == "rate":
            legend = "keys: 1-5 rate  ^ good  v bad  backspace undo  + / - speed  r replay  q quit"
        self._text(legend, (w // 2, h - 40), self.small, MUTED, anchor="midtop")
        self._text(f"answered this session: {self.answered}", (20, h - 40), self.small, GOOD)
        if time.perf_counter() < self.notice_until:
            self._text(self.notice, (w - 20, h - 40), self.small, GOOD, anchor="topright")


def run_label_app(run_dir: Path, labeler: str | None, mode: Mode, ahead: int) -> int:
    app = LabelApp(run_dir, labeler, mode, ahead)
    app.run()
    return app.answered


@contextmanager
def label_window(run_dir: Path, labeler: str | None) -> Iterator[mp.process.BaseProcess]:
    """The comparison window on a training run, in its own process for as long as the run lasts: closed when the
    run ends or fails, and it closes itself if the training process is killed."""
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
    run_label_app(run_dir, labeler, "compare", ahead=3)
