"""The FastAPI application of `prefrl serve`: the page, the labelling API, the clip videos, and a render worker."""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from prefrl.gym.render import prefetch
from prefrl.interfaces.web import clips, labels
from prefrl.interfaces.web.served import Served

log = logging.getLogger(__name__)
STATIC = Path(str(resources.files("prefrl.interfaces.web") / "static"))


def create_app(run_dir: Path, double_share: float = 0.1, lease_s: float = 120.0, render_ahead: int = 8,
               render_worker: bool = True, store_url: str | None = None) -> FastAPI:
    """The web app on one run directory (running or finished).

    Args:
        run_dir: a run directory holding prefs.sqlite.
        double_share: share of queries also asked of a second labeller, as a check.
        lease_s: seconds a query handed to a labeller stays theirs.
        render_ahead: open queries the render worker keeps drawn.
        render_worker: start the render worker process beside the server (tests with pre-rendered clips don't).
        store_url: the run's store: None (RUN/prefs.sqlite, or what RUN/config.json records) or postgresql://...
    """
    served = Served(Path(run_dir), double_share=double_share, lease_s=lease_s, store_url=store_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker, stop = None, None
        if render_worker:
            ctx = mp.get_context("spawn")
            stop = ctx.Event()
            worker = ctx.Process(target=prefetch, args=(served.run_dir, served.store.env_id, render_ahead, stop),
                                 kwargs={"store_url": store_url}, daemon=True, name="prefrl-render")
            worker.start()
            log.info("render worker started (pid %s), drawing %d open queries ahead", worker.pid, render_ahead)
        yield
        if worker is not None and stop is not None:
            stop.set()
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()

    app = FastAPI(title="prefrl labelling", lifespan=lifespan,
                  description="Compare two clips of an agent; every answer goes into the run's preference store.")
    app.state.served = served
    app.include_router(labels.router)
    app.include_router(clips.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The page itself loads without a token; it asks for one and sends it with every API call."""
        return FileResponse(STATIC / "index.html")

    return app
