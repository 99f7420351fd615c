"""Who is asking: a labeller's token (`prefrl labelers add RUN NAME`), sent as `Authorization: Bearer TOKEN`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from prefrl.interfaces.web.served import Served

_bearer = HTTPBearer(auto_error=False)


def served(request: Request) -> Served:
    """The run this server serves (set up by `create_app`)."""
    return request.app.state.served  # type: ignore[no-any-return]


def labeler(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            run: Annotated[Served, Depends(served)]) -> str:
    """The name of the labeller whose token came with the request; 401 without a valid one."""
    name = None if credentials is None else run.store.labeler_of(credentials.credentials)
    if name is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="a labeller's token is needed: ask for one "
                            "(`prefrl labelers add RUN NAME`) and send it as 'Authorization: Bearer TOKEN'",
                            headers={"WWW-Authenticate": "Bearer"})
    return name


Labeler = Annotated[str, Depends(labeler)]
Run = Annotated[Served, Depends(served)]
