"""The labelling API: hand out the next query, take an answer, undo it, count."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from prefrl.core.data import Answer
from prefrl.interfaces.web.auth import Labeler, Run
from prefrl.interfaces.web.models import LabelIn, LabelOut, NextQuery, Status, Undone

RETRY_AFTER_S = 2
router = APIRouter(prefix="/api", tags=["labels"])


@router.get("/next", response_model=NextQuery, responses={204: {"description": "nothing to show yet (Retry-After)"}})
def next_query(labeler: Labeler, run: Run) -> NextQuery | Response:
    """The next query for this labeller, claimed for them for the lease; 204 while none is open with both videos
    rendered (the agent has not asked, or the render worker is still drawing)."""
    q = run.hand_out(labeler)
    if q is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Retry-After": str(RETRY_AFTER_S)})
    return q


@router.post("/label", response_model=LabelOut)
def label(body: LabelIn, labeler: Labeler, run: Run) -> LabelOut:
    """Commit an answer under the labeller's name, with the time the query was handed to them. An answer to a
    query someone else answered first is kept as a check of theirs."""
    try:
        run.store.query(body.query_id)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no query {body.query_id}") from None
    run.store.add_label(body.query_id, Answer(body.answer), labeler, shown=run.shown(labeler, body.query_id))
    return LabelOut(query_id=body.query_id, answer=body.answer, labeler=labeler)


@router.post("/undo", response_model=Undone, responses={204: {"description": "nothing to undo"}})
def undo(labeler: Labeler, run: Run) -> Undone | Response:
    """Withdraw this labeller's latest label; its query comes back (as `next`) when it is open again."""
    lab = run.store.undo_last_label(labeler)
    if lab is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return Undone(query_id=lab.query_id, answer=lab.answer.value, next=run.hand_back(labeler, lab.query_id))


@router.get("/status", response_model=Status)
def counts(labeler: Labeler, run: Run) -> Status:
    s = run.store
    return Status(labeler=labeler, env_id=s.env_id, given=run.given(labeler)[1], open=s.count_pending(),
                  labels=s.count_labels(), asked=s.count_queries("asked"))
