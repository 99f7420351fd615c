"""Clip videos, for labellers with a token.

Videos come from RUN/clips on the server's own disk: the server runs next to the store, where the render worker
draws each clip from its recorded states (`prefrl.gym.render.prefetch`) and writes RUN/clips/ID.mp4, so a
labeller elsewhere needs nothing but HTTP. The page fetches them with its Bearer header and plays them from blob
URLs, so the videos are as protected as the API.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from prefrl.interfaces.web.auth import Labeler, Run

router = APIRouter(prefix="/clips", tags=["clips"])


@router.get("/{clip_id}.mp4", response_class=FileResponse)
def clip_video(clip_id: int, labeler: Labeler, run: Run) -> FileResponse:
    path = run.video(clip_id)
    if not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"clip {clip_id} is not rendered (yet)")
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})
