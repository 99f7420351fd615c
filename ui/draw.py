"""How the comparison window looks: the header, the clips (or completions) in panels, the buttons and the quit
dialog. `WindowPainter` draws a `LabelApp` (prefrl.ui.app) each frame from its state; it changes nothing but what
is on screen and the hit areas it leaves for the mouse (`buttons`, `panels`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pygame

from prefrl.ui.ranking import elo
from prefrl.ui.text import draw_text

if TYPE_CHECKING:
    from prefrl.core.data import Query

BG, PANEL, INK, MUTED, ACCENT, GOOD = (24, 26, 31), (38, 41, 48), (235, 237, 240), (150, 156, 168), (90, 160, 255), (
    80, 200, 120)
WAIT = (255, 190, 70)  # the run waits for the person


@dataclass
class Button:
    label: str
    action: str
    rect: pygame.Rect


class WindowPainter:
    """The drawing half of `LabelApp`: what it reads of the app's state is declared here."""

    screen: pygame.Surface
    font: pygame.font.Font
    big: pygame.font.Font
    small: pygame.font.Font
    mono: pygame.font.Font
    mode: str
    text: bool
    texts: dict[int, tuple[str, str]]
    current: Query | None
    rate_side: int
    rank_set: list[int]
    rank_order: list[int]
    rank_scores: dict[int, float]
    k: int
    waiting: tuple[int, int] | None
    dialog: bool
    fps: float
    speed: float
    shown_at: float
    shown_wall: float | None
    answered: int
    notice: str
    notice_until: float
    drawn: list[str]
    buttons: list[Button]
    panels: list[pygame.Rect]

    def header(self) -> list[str]:
        raise NotImplementedError

    def status(self) -> tuple[str, str]:
        raise NotImplementedError

    def _have(self, *ids: int) -> bool:
        raise NotImplementedError

    def _surfaces_of(self, cid: int) -> list[pygame.Surface]:
        raise NotImplementedError

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
