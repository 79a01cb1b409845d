"""FastAPI integration: a lifespan helper, a dependency, and ``@cached_route``. Needs the ``fastapi`` extra.

::

    from rediscache import compose
    from rediscache.kit.fastapi import CacheServiceDep, cache_lifespan, cached_route

    kit = compose.cache(backend="redis", redis_url="redis://localhost:6379/0")
    app = FastAPI(lifespan=cache_lifespan(kit))     # opens the kit at start-up, closes it at shutdown

    @app.get("/products/{product_id}")
    @cached_route(kit, ttl=timedelta(minutes=5), namespace="products",
                  tags=lambda request: [f"product:{request.path_params['product_id']}"])
    async def read_product(product_id: int) -> Product: ...

    @app.post("/products/{product_id}")
    async def update_product(product_id: int, cache: CacheServiceDep) -> None:
        await cache.invalidate_tags([f"product:{product_id}"])

``@cached_route`` (below ``@app.get``) caches what a GET endpoint returns, keyed by method, path and
sorted query string (``"GET /products/42?lang=en"``, in the route's namespace), so a pattern such as
``invalidate_pattern("GET /products/*", namespace="products")`` drops a whole family. It never serves
one user's response to another: a request carrying ``Authorization`` or ``Cookie`` is passed through
uncached unless that header is listed in ``vary_on_headers``, and then its value is part of the key
(hashed, so no credential is written to Redis). Not cached either: other methods, exceptions, status
codes outside 2xx (and 206), responses that set a cookie or say ``Cache-Control: private``/``no-store``,
and streaming or file responses.

What is cached is the endpoint's return value made JSON-compatible (``jsonable_encoder``), before
FastAPI applies ``response_model``; FastAPI validates and filters it again on every hit, so clients see
exactly what an uncached call returns, but a field the response model hides is still stored in the
cache: return the public model if that matters. A ``Response`` the endpoint returns is cached as its
status, headers and body. Responses carry ``X-Cache: HIT`` or ``MISS``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import typing
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, StreamingResponse

from rediscache._models import CacheKey, validate_ttl
from rediscache.kit.cachekit import CacheKit
from rediscache.kit.service import CacheService

__all__ = [
    "STATE_ATTRIBUTE",
    "CacheServiceDep",
    "cache_lifespan",
    "cached_route",
    "get_cache_kit",
    "get_cache_service",
]

#: ``app.state`` attribute holding the kit (set by ``cache_lifespan``; set it yourself in a lifespan of your own).
STATE_ATTRIBUTE = "rediscache_kit"

_F = TypeVar("_F", bound=Callable[..., Any])
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
NamespaceSpec = str | Callable[[Request], "str | None"] | None
TagsSpec = Sequence[str] | Callable[[Request], Sequence[str]] | None

_PAYLOAD_VERSION = 1
_PRIVATE_HEADERS = ("authorization", "cookie")
_UNCACHEABLE_DIRECTIVES = ("no-store", "private")
# Headers recomputed for every response (a stored length could disagree with the body sent) or never shared.
_DROPPED_HEADERS = frozenset({"content-length", "set-cookie", "x-cache"})


# -- lifespan and dependencies -------------------------------------------------------------------------


def cache_lifespan(kit: CacheKit, lifespan: Lifespan | None = None) -> Lifespan:
    """A FastAPI ``lifespan`` that opens ``kit`` at start-up (``async with kit``) and closes it at shutdown.

    Opening waits, bounded (``coherence_timeout`` of the kit, 5 s by default), until a hybrid
    backend's L1 is coherent, so the first requests a worker serves already hit its L1.

    The kit is put on ``app.state`` for :func:`get_cache_service`. An application lifespan of your own
    can be passed as ``lifespan``: it runs inside, with the cache already open, and what it yields is
    passed on.
    """

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[Any]:
        async with kit:
            setattr(app.state, STATE_ATTRIBUTE, kit)
            try:
                if lifespan is None:
                    yield None
                else:
                    async with lifespan(app) as state:
                        yield state
            finally:
                delattr(app.state, STATE_ATTRIBUTE)

    return run


def get_cache_kit(request: Request) -> CacheKit:
    """Dependency: the application's ``CacheKit`` (see :func:`cache_lifespan`)."""
    kit = getattr(request.app.state, STATE_ATTRIBUTE, None)
    if not isinstance(kit, CacheKit):
        raise RuntimeError(
            "no CacheKit on app.state: create the app with FastAPI(lifespan=cache_lifespan(kit)), "
            f"or set app.state.{STATE_ATTRIBUTE} = kit in your own lifespan"
        )
    return kit


def get_cache_service(request: Request) -> CacheService:
    """Dependency: the application's ``CacheService``."""
    return get_cache_kit(request).service


#: ``cache: CacheServiceDep`` in an endpoint's parameters receives the service.
CacheServiceDep = Annotated[CacheService, Depends(get_cache_service)]


# -- @cached_route ---------------------------------------------------------------------------------------


class _Uncacheable(Exception):
    """Raised out of ``get_or_set``'s factory so that a response that must not be stored is not stored.

    ``owner`` tells the request that produced it from concurrent requests that shared its computation:
    those compute their own response rather than receive another request's uncacheable one.
    """

    def __init__(self, owner: object, result: Any) -> None:
        super().__init__("response not cacheable")
        self.owner = owner
        self.result = result


def cached_route(
    cache: CacheService | CacheKit | None = None,
    *,
    ttl: timedelta | None = None,
    namespace: NamespaceSpec = None,
    tags: TagsSpec = None,
    vary_on_headers: Sequence[str] = (),
) -> Callable[[_F], _F]:
    """Cache a GET endpoint's responses. Put it below ``@app.get(...)``.

    Args:
        cache: the service (or kit) to use; ``None``: the kit of :func:`cache_lifespan`, looked up per request.
        ttl: lifetime of a cached response (default: the service's ``default_ttl``).
        namespace: a namespace, or a function of the request returning one (default: the service's).
        tags: tags, or a function of the request returning them (for example from ``request.path_params``).
        vary_on_headers: request headers whose values become part of the key (case-insensitive). Listing
            ``authorization`` or ``cookie`` is what allows requests carrying them to be cached, per value.
    """
    validate_ttl(ttl)
    if isinstance(vary_on_headers, str):
        raise ValueError("vary_on_headers must be a list of header names, not a str")
    vary = tuple(dict.fromkeys(name.lower() for name in vary_on_headers))

    def decorate(endpoint: _F) -> _F:
        signature = inspect.signature(endpoint)
        try:
            hints = typing.get_type_hints(endpoint, include_extras=True)
        except NameError:
            # An annotation naming something not importable from the endpoint's module (a local class
            # under `from __future__ import annotations`): FastAPI cannot resolve it either, and will say so.
            hints = {}
        params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
        request_name = next((p.name for p in params if _is_type(p.annotation, Request)), None)
        response_name = next((p.name for p in params if _is_type(p.annotation, Response)), None)
        # FastAPI injects parameters by their annotation: ask for the request and the (shared) sub-response
        # under names the endpoint cannot be using, and keep them from the endpoint if it did not ask.
        added = []
        if request_name is None:
            added.append(inspect.Parameter("_rediscache_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request))
        if response_name is None:
            added.append(inspect.Parameter("_rediscache_response", inspect.Parameter.KEYWORD_ONLY, annotation=Response))
        tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
        head = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        wrapper_signature = signature.replace(
            parameters=[*head, *added, *tail], return_annotation=hints.get("return", signature.return_annotation)
        )
        is_async = inspect.iscoroutinefunction(endpoint)

        async def call_endpoint(arguments: dict[str, Any]) -> Any:
            if is_async:
                return await endpoint(**arguments)
            return await run_in_threadpool(functools.partial(endpoint, **arguments))

        async def route(**arguments: Any) -> Any:
            request: Request = arguments[request_name] if request_name else arguments.pop("_rediscache_request")
            response: Response = arguments[response_name] if response_name else arguments.pop("_rediscache_response")
            if request.method != "GET" or not _shareable(request, vary):
                return await call_endpoint(arguments)
            service = _service(cache, request)
            key = CacheKey(
                key=_route_key(request, vary),
                namespace=_namespace(namespace, request, service),
                tags=_tags(tags, request),
            )
            owner = object()
            computed: list[Any] = []

            async def factory() -> dict[str, Any]:
                result = await call_endpoint(arguments)
                payload = _payload(result, response)
                if payload is None:
                    raise _Uncacheable(owner, result)
                computed.append(result)
                return payload

            try:
                payload = await service.get_or_set(key, factory, ttl=ttl)
            except _Uncacheable as exc:
                if exc.owner is owner:
                    return exc.result
                return await call_endpoint(arguments)
            if not _replayable(payload):
                # Written by another version of this module (a rolling deploy): recompute, uncached this once.
                await service.delete(key)
                return _mark(await call_endpoint(arguments), response, "MISS")
            if computed:
                # Our own call: return its result as it is, so FastAPI serializes it exactly as uncached.
                return _mark(computed[0], response, "MISS")
            return _mark(_replay(payload, response), response, "HIT")

        route.__signature__ = wrapper_signature  # type: ignore[attr-defined]
        # Name and docs for OpenAPI, but no __wrapped__: FastAPI must see this coroutine function, not
        # the endpoint (which may be sync) behind it.
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(route, attribute, getattr(endpoint, attribute, None))
        return typing.cast(_F, route)

    return decorate


def _is_type(annotation: Any, kind: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, kind)


def _service(cache: CacheService | CacheKit | None, request: Request) -> CacheService:
    if isinstance(cache, CacheService):
        return cache
    if isinstance(cache, CacheKit):
        return cache.service
    return get_cache_service(request)


def _shareable(request: Request, vary: tuple[str, ...]) -> bool:
    """A request carrying credentials is cached only when the key varies on them."""
    return all(name in vary or name not in request.headers for name in _PRIVATE_HEADERS)


def _route_key(request: Request, vary: tuple[str, ...]) -> str:
    key = f"{request.method} {request.url.path}"
    query = sorted(request.query_params.multi_items())
    if query:
        key += "?" + urlencode(query)
    if vary:
        varied = [[name, request.headers.getlist(name)] for name in vary]
        # Hashed: header values (tokens, cookies) must not be readable in Redis key names.
        key += " vary:" + hashlib.sha256(json.dumps(varied).encode()).hexdigest()[:32]
    return key


def _namespace(spec: NamespaceSpec, request: Request, service: CacheService) -> str | None:
    value = spec(request) if callable(spec) else spec
    return service.default_namespace if value is None else value


def _tags(spec: TagsSpec, request: Request) -> list[str]:
    value = spec(request) if callable(spec) else spec
    return list(value or [])


def _cacheable_headers(headers: Any) -> list[list[str]] | None:
    """The headers worth replaying, or ``None`` if they forbid sharing the response."""
    if "set-cookie" in headers:
        return None
    directives = headers.get("cache-control", "").lower()
    if any(directive in directives for directive in _UNCACHEABLE_DIRECTIVES):
        return None
    return [
        [name.decode("latin-1"), value.decode("latin-1")]
        for name, value in headers.raw
        if name.decode("latin-1").lower() not in _DROPPED_HEADERS
    ]


def _cacheable_status(status: int | None) -> bool:
    return status is None or (200 <= status < 300 and status != 206)


def _payload(result: Any, sub_response: Response) -> dict[str, Any] | None:
    """What to store for this result, or ``None`` if it must not be cached."""
    if isinstance(result, Response):
        body = getattr(result, "body", None)  # streaming and file responses have none
        if isinstance(result, (StreamingResponse, FileResponse)) or not isinstance(body, bytes):
            return None
        headers = _cacheable_headers(result.headers)
        if headers is None or not _cacheable_status(result.status_code):
            return None
        return {
            "v": _PAYLOAD_VERSION,
            "kind": "response",
            "status": result.status_code,
            "headers": headers,
            "body": body,
        }
    headers = _cacheable_headers(sub_response.headers)
    status: int | None = sub_response.status_code  # FastAPI leaves it None unless the endpoint set it
    if headers is None or not _cacheable_status(status):
        return None
    return {
        "v": _PAYLOAD_VERSION,
        "kind": "data",
        "status": status,
        "headers": headers,
        "data": jsonable_encoder(result),
    }


def _replayable(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and payload.get("v") == _PAYLOAD_VERSION
        and payload.get("kind") in ("response", "data")
    )


def _replay(payload: dict[str, Any], sub_response: Response) -> Any:
    if payload["kind"] == "response":
        body: bytes = payload["body"]
        replayed = Response(content=body, status_code=payload["status"])
        replayed.raw_headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in payload["headers"]
        ] + [(b"content-length", str(len(body)).encode())]
        return replayed
    for name, value in payload["headers"]:
        sub_response.headers.append(name, value)
    if payload["status"] is not None:
        sub_response.status_code = payload["status"]
    return payload["data"]


def _mark(result: Any, sub_response: Response, state: str) -> Any:
    # A returned Response is sent as it is; otherwise FastAPI copies the sub-response's headers.
    target = result if isinstance(result, Response) else sub_response
    target.headers["x-cache"] = state
    return result
