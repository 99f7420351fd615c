"""Text clips in the window: a prompt and completions as wrapped monospace text."""

from __future__ import annotations

import textwrap

import pygame

_MONO = "dejavusansmono,liberationmono,notosansmono,ubuntumono,couriernew,monospace"


def mono_font(size: int) -> pygame.font.Font:
    """A monospace font of `size` pixels (pygame's own font where the system has none)."""
    path = pygame.font.match_font(_MONO)
    return pygame.font.Font(path, size) if path else pygame.font.Font(None, size + 4)


def wrap(text: str, font: pygame.font.Font, width: int) -> list[str]:
    """`text` broken into lines that fit `width` pixels in `font` (monospace: by character count); newlines and
    blank lines are kept."""
    chars = max(8, width // max(1, font.size("M")[0]))
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(para, chars, replace_whitespace=False, drop_whitespace=True) or [""])
    return lines


def draw_text(screen: pygame.Surface, text: str, rect: pygame.Rect, font: pygame.font.Font,
              colour: tuple[int, int, int]) -> pygame.Rect:
    """Draw `text` wrapped inside `rect` (cut with an ellipsis where it runs out of room); returns the area used."""
    step = font.get_linesize()
    lines = wrap(text, font, rect.w)
    room = max(1, rect.h // step)
    if len(lines) > room:
        lines = lines[:room - 1] + ["..."]
    for n, line in enumerate(lines):
        screen.blit(font.render(line, True, colour), (rect.x, rect.y + n * step))
    return pygame.Rect(rect.x, rect.y, rect.w, len(lines) * step)
