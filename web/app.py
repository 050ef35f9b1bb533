"""The HTTP API and the explorer page of `simdex serve`, a second face like cli.py.

    app = create_app("~/.local/share/simdex/default")
    uvicorn.run(app, host="127.0.0.1", port=8000)

A route parses its parameters, calls one Store (or Explorer) method and returns the same fields
as the CLI's --json lines. The store is opened read-only once, in the event loop's thread, and
every route runs there: a query is a few milliseconds of numpy or FAISS, so a request holds the
loop for its own work only and no lock is needed. A user's mistake is a 4xx with {"error": ...}
(an unknown word: 404 with close spellings in "suggestions"); nothing writes to the store.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..engine.errors import SimdexError, UnknownWord
from ..engine.explore import Explorer
from ..engine.records import oov_fields, ranked
from ..engine.store import Store

STATIC = Path(__file__).parent / "static"
MAX_K = 500          # answers per request
MAX_MAP_K = 300      # points on the map
MAX_QUERY = 1000     # characters in a query


class BadParameter(Exception):
    pass


# -- the routes: parse, call one method, return its fields --------------------------------------------

def store_of(request: Request) -> Store:
    return request.app.state.store


async def info(request):
    store = store_of(request)
    return {**store.info(), "served": store.location, "fields": store.fields()}


async def neighbors(request):
    q, k = text(request, "q"), count(request, "k", 10)
    store = store_of(request)
    oov = oov_fields(store, q) if store.version.kind == "words" else {}
    answers = store.neighbors(q, k=k, where=optional(request, "where"))
    return [{**record, **oov} for record in ranked(q, answers, "word")]


async def analogy(request):
    a, b, c = text(request, "a"), text(request, "b"), text(request, "c")
    method = request.query_params.get("method", "add")
    store = store_of(request)
    answers = store.analogy(a, b, c, k=count(request, "k", 5), method=method)
    oov = oov_fields(store, [a, b, c])
    return [{**record, **oov} for record in ranked(f"{a} : {b} :: {c} : ?", answers, "word")]


async def similarity(request):
    a, b = text(request, "a"), text(request, "b")
    store = store_of(request)
    return {"a": a, "b": b, "score": round(store.similarity(a, b), 6), **oov_fields(store, [a, b])}


async def doesnt_match(request):
    words = [w for w in text(request, "words").replace(",", " ").split() if w]
    word, score = store_of(request).doesnt_match(words)
    return {"words": words, "word": word, "score": round(score, 6)}


async def suggest(request):
    prefix = request.query_params.get("prefix", "")
    if len(prefix) > MAX_QUERY:
        raise BadParameter(f"prefix is longer than {MAX_QUERY} characters")
    return {"prefix": prefix, "words": request.app.state.explorer.suggest(prefix, count(request, "k", 10))}


async def search(request):
    """The CLI's `search`: ?q=&k=&mode=vector|keyword|hybrid&where=&vector_weight=&keyword_weight=&rrf_k="""
    q, k = text(request, "q"), count(request, "k", 10)
    options = {name: number(request, name) for name in ("vector_weight", "keyword_weight", "rrf_k")
               if request.query_params.get(name)}
    hits = store_of(request).hits([q], k=k, where=optional(request, "where"),
                                  mode=request.query_params.get("mode") or "vector", **options)[0]
    return [hit.record(q, rank) for rank, hit in enumerate(hits, 1)]


async def map_(request):
    q, k = text(request, "q"), count(request, "k", 30, cap=MAX_MAP_K)
    return request.app.state.explorer.projection(q, k)


ROUTES = {"info": info, "neighbors": neighbors, "analogy": analogy, "similarity": similarity,
          "doesnt-match": doesnt_match, "suggest": suggest, "search": search, "map": map_}


# -- the app ----------------------------------------------------------------------------------------------

def create_app(location) -> Starlette:
    """The app over the store at `location`, opened read-only when the server starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.store = Store.open(location, read_only=True)
        app.state.explorer = Explorer(app.state.store)
        yield
        app.state.store.close()

    routes = ([Route("/", page)] + [Route(f"/api/{name}", api(handler)) for name, handler in ROUTES.items()]
              + [Mount("/static", StaticFiles(directory=STATIC), name="static")])
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})


def api(handler):
    """A route's handler as an endpoint: its result as JSON, a user's mistake as a 4xx."""
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


# -- parameters -------------------------------------------------------------------------------------------

def text(request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise BadParameter(f"missing parameter {name!r}")
    if len(value) > MAX_QUERY:
        raise BadParameter(f"parameter {name!r} is longer than {MAX_QUERY} characters")
    return value


def optional(request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    if len(value) > MAX_QUERY:
        raise BadParameter(f"parameter {name!r} is longer than {MAX_QUERY} characters")
    return value or None


def number(request, name: str) -> float:
    raw = request.query_params.get(name)
    try:
        return float(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a number, got {raw!r}") from None


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
