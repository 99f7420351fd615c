"""Request and response bodies of the web API (pydantic: the validation and its error message come from here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class NextQuery(BaseModel):
    """A query handed to one labeller, with the URLs of its two clip videos."""

    query_id: int
    left: str = Field(description="URL of the left clip's video (GET it with the Bearer token)")
    right: str = Field(description="URL of the right clip's video")
    check: bool = Field(False, description="true when someone else answered it already and this answer checks theirs")


class LabelIn(BaseModel):
    query_id: int
    answer: Literal["left", "right", "equal", "skip"] = Field(
        description="left or right is better, equally good, or skip (can't tell)")


class LabelOut(BaseModel):
    query_id: int
    answer: str
    labeler: str


class Undone(BaseModel):
    """The label just withdrawn; `next` is its query again when it can be shown (the pair comes back)."""

    query_id: int
    answer: str
    next: NextQuery | None = None


class Status(BaseModel):
    """The page's counter."""

    labeler: str
    env_id: str
    given: int = Field(description="labels (and checks) this labeller has given")
    open: int = Field(description="queries waiting for an answer")
    labels: int = Field(description="standing labels in the store, from everyone")
    asked: int = Field(description="queries the run has asked")
