"""The web page for labellers on other machines: `prefrl serve RUN` (FastAPI + uvicorn, the `[web]` extra).

A thin client of the preference store, like the pygame window: the same queries, claims and labels, over HTTP.
`app.create_app` builds the application; `labels` and `clips` are its routers; `auth` checks labellers' tokens.
"""
