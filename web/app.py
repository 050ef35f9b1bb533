"""The HTTP API and the explorer page of `simdex serve`, a second face like cli.py.

    app = create_app("~/.local/share/simdex/default")
    uvicorn.run(app, host="127.0.0.1", port=8000)

A route parses its parameters, calls one Store method and returns the same fields as the CLI's
--json lines. The store is opened read-only once, in the event loop's thread, and every route
runs there: a query is a few milliseconds of numpy or FAISS, so a request holds the loop for
its own work only and no lock is needed. A user's mistake is a 4xx with {"error": ...}
(an unknown word: 404 with close spellings in "suggestions"); nothing writes to the store.
"""

from __future__ import annotations

import bisect
import contextlib
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..engine.errors import SimdexError, UnknownWord
from ..engine.records import to_json

STATIC = Path(__file__).parent / "static"
MAX_K = 500          # answers per request
MAX_MAP_K = 300      # points on the map
MAX_QUERY = 1000     # characters in a query


class BadParameter(Exception):
    pass


def create_app(location) -> Starlette:
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        from ..engine.store import Store

        state["store"] = Store.open(location, read_only=True)
        yield
        state["store"].close()

    def store():
        return state["store"]

    async def info(request):
        return {**store().info(), "served": store().location}

    async def neighbors(request):
        q, k = text(request, "q"), count(request, "k", 10)
        return ranked(q, store().neighbors(q, k=k), "word")

    async def analogy(request):
        a, b, c = text(request, "a"), text(request, "b"), text(request, "c")
        method = request.query_params.get("method", "add")
        answers = store().analogy(a, b, c, k=count(request, "k", 5), method=method)
        return ranked(f"{a} : {b} :: {c} : ?", answers, "word")

    async def similarity(request):
        a, b = text(request, "a"), text(request, "b")
        return {"a": a, "b": b, "score": round(store().similarity(a, b), 6)}

    async def doesnt_match(request):
        words = [w for w in text(request, "words").replace(",", " ").split() if w]
        word, score = store().doesnt_match(words)
        return {"words": words, "word": word, "score": round(score, 6)}

    async def suggest(request):
        prefix = request.query_params.get("prefix", "")
        if len(prefix) > MAX_QUERY:
            raise BadParameter(f"prefix is longer than {MAX_QUERY} characters")
        return {"prefix": prefix, "words": suggestions(prefix, count(request, "k", 10))}

    async def search(request):
        q = text(request, "q")
        return ranked(q, store().search(q, k=count(request, "k", 10)), "text")

    async def map_(request):
        q, k = text(request, "q"), count(request, "k", 30, cap=MAX_MAP_K)
        return projection(q, k)

    def suggestions(prefix: str, k: int) -> list[str]:
        """Vocabulary words starting with `prefix`, the most frequent (lowest row) first."""
        if "sorted" not in state:
            keys = store().keys()
            order = sorted(range(len(keys)), key=keys.__getitem__)
            state["sorted"] = ([keys[i] for i in order], order)
        words, rows = state["sorted"]
        start = bisect.bisect_left(words, prefix)
        end = bisect.bisect_left(words, prefix + "\U0010ffff")
        found = sorted(rows[start:end][:50_000])[:k]
        return [store().keys()[i] for i in found]

    def projection(q: str, k: int) -> dict:
        """The query and its k neighbours, PCA-projected to 2-D from their stored vectors."""
        from ..engine import query

        s = store()
        s.require_kind("words", "the map")
        answers = s.neighbors(q, k=k)
        positive, negative = s.query_rows(q)
        centre = query.mean_of_unit_rows(s.vectors(), positive, negative).reshape(1, -1)
        vectors = np.vstack([centre, np.asarray(s.vectors()[s.ids_of([w for w, _ in answers])])])
        centred = vectors - vectors.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ components[:2].T
        xy /= np.abs(xy).max() or 1.0
        words = [q] + [w for w, _ in answers]
        scores = [1.0] + [score for _, score in answers]
        return {"query": q, "points": [{"word": w, "x": round(float(x), 5), "y": round(float(y), 5),
                                        "score": round(float(sc), 6), "query": i == 0}
                                       for i, (w, (x, y), sc) in enumerate(zip(words, xy, scores))]}

    def api(handler):
        async def endpoint(request: Request):
            try:
                return JSONResponse(await handler(request))
            except UnknownWord as e:
                return JSONResponse({"error": str(e), "word": e.word, "suggestions": e.suggestions}, status_code=404)
            except (SimdexError, BadParameter) as e:
                return JSONResponse({"error": str(e)}, status_code=400)
        return endpoint

    async def page(request):
        return FileResponse(STATIC / "index.html")

    async def not_found(request, exc):
        return JSONResponse({"error": f"no route {request.url.path}" if exc.status_code == 404 else exc.detail},
                            status_code=exc.status_code)

    routes = [Route("/", page)] + [
        Route(f"/api/{name}", api(handler)) for name, handler in [
            ("info", info), ("neighbors", neighbors), ("analogy", analogy), ("similarity", similarity),
            ("doesnt-match", doesnt_match), ("suggest", suggest), ("search", search), ("map", map_)]
    ] + [Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})


def text(request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise BadParameter(f"missing parameter {name!r}")
    if len(value) > MAX_QUERY:
        raise BadParameter(f"parameter {name!r} is longer than {MAX_QUERY} characters")
    return value


def count(request, name: str, default: int, cap: int = MAX_K) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a whole number, got {raw!r}") from None
    if not 1 <= value <= cap:
        raise BadParameter(f"{name} must be between 1 and {cap}, got {value}")
    return value


def ranked(title: str, answers, key: str) -> list[dict]:
    return [{"query": title, "rank": rank, key: word, "score": round(float(score), 6)}
            for rank, (word, score) in enumerate(answers, 1)]
