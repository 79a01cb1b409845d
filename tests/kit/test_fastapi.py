"""FastAPI integration on a real ASGI app through httpx, with the cache on real Redis: the lifespan helper,
the service dependency, and @cached_route (keys, what is never cached, and never sharing private responses)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from support.redis_servers import RedisServer

from rediscache.kit import CacheKit, compose
from rediscache.kit.fastapi import CacheServiceDep, cache_lifespan, cached_route


class Product(BaseModel):
    id: int
    name: str


class App:
    """An application under test: its kit, the app, a client, and how often each endpoint ran."""

    def __init__(self, kit: CacheKit) -> None:
        self.kit = kit
        self.calls: Counter[str] = Counter()
        self.app = FastAPI(lifespan=cache_lifespan(kit))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test")

    def route(self, path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        """``@app.get(path)`` over ``@cached_route(kit, **options)``."""

        def register(endpoint: Callable[..., Any]) -> Any:
            return self.app.get(path)(cached_route(self.kit, **options)(endpoint))

        return register


@pytest_asyncio.fixture
async def api(redis_server: RedisServer, redis_client: Any, key_prefix: str) -> AsyncIterator[App]:
    app = App(compose.cache("redis", redis_url=redis_server.url, key_prefix=key_prefix))
    # httpx's transport sends no lifespan events: run the app's lifespan around the test, as a server would.
    async with app.app.router.lifespan_context(app.app), app.client:
        yield app


def counted(api: App, name: str, result: Any = None) -> Callable[..., Any]:
    async def endpoint() -> Any:
        api.calls[name] += 1
        return {"n": api.calls[name]} if result is None else result

    endpoint.__name__ = name
    return endpoint


async def test_the_second_get_is_served_from_the_cache(api: App) -> None:
    api.route("/hello")(counted(api, "hello"))

    first = await api.client.get("/hello")
    second = await api.client.get("/hello")

    assert (first.json(), second.json()) == ({"n": 1}, {"n": 1})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.headers["content-type"] == "application/json"


async def test_query_parameters_are_part_of_the_key_in_any_order(api: App) -> None:
    @api.route("/search")
    async def search(q: str, page: int = 1) -> dict[str, Any]:
        api.calls["search"] += 1
        return {"q": q, "page": page}

    await api.client.get("/search?q=a&page=2")
    again = await api.client.get("/search?page=2&q=a")
    other = await api.client.get("/search?q=a&page=3")

    assert again.headers["x-cache"] == "HIT" and other.json() == {"q": "a", "page": 3}
    assert api.calls["search"] == 2


async def test_the_path_is_part_of_the_key(api: App) -> None:
    @api.route("/products/{product_id}")
    async def product(product_id: int) -> Product:
        api.calls["product"] += 1
        return Product(id=product_id, name=f"p{product_id}")

    one = await api.client.get("/products/1")
    two = await api.client.get("/products/2")

    assert (one.json()["id"], two.json()["id"]) == (1, 2)
    assert api.calls["product"] == 2


async def test_other_methods_are_never_cached(api: App) -> None:
    @api.app.post("/orders")
    @cached_route(api.kit)
    async def order() -> dict[str, int]:
        api.calls["order"] += 1
        return {"n": api.calls["order"]}

    responses = [await api.client.post("/orders") for _ in range(2)]

    assert [response.json() for response in responses] == [{"n": 1}, {"n": 2}]


async def test_errors_are_not_cached(api: App) -> None:
    @api.route("/missing")
    async def missing() -> None:
        api.calls["missing"] += 1
        raise HTTPException(404, "no such thing")

    @api.route("/failing")
    async def failing() -> JSONResponse:
        api.calls["failing"] += 1
        return JSONResponse({"error": "upstream"}, status_code=502)

    for _ in range(2):
        assert (await api.client.get("/missing")).status_code == 404
        assert (await api.client.get("/failing")).status_code == 502

    assert (api.calls["missing"], api.calls["failing"]) == (2, 2)


@pytest.mark.parametrize("header", [{"Authorization": "Bearer alice"}, {"Cookie": "session=alice"}])
async def test_requests_with_credentials_are_not_cached(api: App, header: dict[str, str]) -> None:
    api.route("/me")(counted(api, "me"))

    private = [await api.client.get("/me", headers=header) for _ in range(2)]
    anonymous = await api.client.get("/me")

    assert [response.json() for response in private] == [{"n": 1}, {"n": 2}]
    assert "x-cache" not in private[0].headers
    assert anonymous.json() == {"n": 3}  # nothing private was stored for anonymous requests either


async def test_varying_on_authorization_caches_per_credential(api: App) -> None:
    @api.route("/me", vary_on_headers=["Authorization"])
    async def me(request: Request) -> dict[str, str]:
        api.calls["me"] += 1
        return {"user": request.headers["authorization"].split()[-1]}

    alice = await api.client.get("/me", headers={"Authorization": "Bearer alice"})
    bob = await api.client.get("/me", headers={"Authorization": "Bearer bob"})
    alice_again = await api.client.get("/me", headers={"Authorization": "Bearer alice"})

    assert (alice.json(), bob.json(), alice_again.json()) == ({"user": "alice"}, {"user": "bob"}, {"user": "alice"})
    assert alice_again.headers["x-cache"] == "HIT"
    assert api.calls["me"] == 2


async def test_credentials_never_appear_in_redis_keys(api: App, redis_client: Any, key_prefix: str) -> None:
    api.route("/me", vary_on_headers=["authorization"])(counted(api, "me"))

    await api.client.get("/me", headers={"Authorization": "Bearer s3cret-token"})

    keys = [key async for key in redis_client.scan_iter(match=f"*{key_prefix}*")]
    assert keys and not any(b"s3cret" in key for key in keys)


async def test_a_response_that_sets_a_cookie_is_not_cached(api: App) -> None:
    @api.route("/login-page")
    async def page(response: Response) -> dict[str, int]:
        api.calls["page"] += 1
        response.set_cookie("csrf", f"token-{api.calls['page']}")
        return {"n": api.calls["page"]}

    first = await api.client.get("/login-page")
    api.client.cookies.clear()  # a new visitor: no cookie, so the request itself is cacheable
    second = await api.client.get("/login-page")

    assert first.cookies["csrf"] != second.cookies["csrf"]
    assert api.calls["page"] == 2


async def test_a_response_marked_private_is_not_cached(api: App) -> None:
    @api.route("/private")
    async def private() -> PlainTextResponse:
        api.calls["private"] += 1
        return PlainTextResponse("mine", headers={"Cache-Control": "private, max-age=60"})

    for _ in range(2):
        await api.client.get("/private")

    assert api.calls["private"] == 2


async def test_a_streaming_response_is_not_cached(api: App) -> None:
    @api.route("/stream")
    async def stream() -> StreamingResponse:
        api.calls["stream"] += 1

        async def chunks() -> AsyncIterator[bytes]:
            yield b"part"

        return StreamingResponse(chunks())

    for _ in range(2):
        assert (await api.client.get("/stream")).content == b"part"

    assert api.calls["stream"] == 2


async def test_a_pattern_over_method_and_path_drops_a_family_of_responses(api: App) -> None:
    @api.route("/products/{product_id}", namespace="products")
    async def read(product_id: int) -> dict[str, int]:
        return {"id": product_id}

    await api.client.get("/products/1")
    await api.client.get("/products/2?fields=id")

    assert await api.kit.service.invalidate_pattern("GET /products/*", namespace="products") == 2


async def test_namespace_and_tags_let_writes_invalidate_cached_responses(api: App) -> None:
    @api.route(
        "/products/{product_id}",
        namespace="products",
        tags=lambda request: [f"product:{request.path_params['product_id']}"],
    )
    async def read(product_id: int) -> dict[str, int]:
        api.calls[f"read {product_id}"] += 1
        return {"id": product_id, "version": api.calls[f"read {product_id}"]}

    @api.app.put("/products/{product_id}")
    async def update(product_id: int, cache: CacheServiceDep) -> dict[str, int]:
        return {"invalidated": await cache.invalidate_tags([f"product:{product_id}"])}

    await api.client.get("/products/1")
    await api.client.get("/products/2")
    assert (await api.client.put("/products/1")).json() == {"invalidated": 1}

    assert (await api.client.get("/products/1")).json() == {"id": 1, "version": 2}
    assert (await api.client.get("/products/2")).headers["x-cache"] == "HIT"
    assert await api.kit.service.exists("GET /products/2", namespace="products")


async def test_the_ttl_applies_to_cached_responses(api: App) -> None:
    api.route("/short", ttl=timedelta(seconds=30), namespace="pages")(counted(api, "short"))

    await api.client.get("/short")

    entry = await api.kit.service.get_entry("GET /short", namespace="pages")
    assert entry is not None and entry.expires_at is not None
    assert entry.expires_at - entry.created_at == timedelta(seconds=30)


async def test_the_response_model_filters_cached_responses_too(api: App) -> None:
    class Public(BaseModel):
        name: str

    @api.app.get("/user", response_model=Public)
    @cached_route(api.kit)
    async def user() -> dict[str, str]:
        return {"name": "Ada", "password_hash": "x"}

    miss = await api.client.get("/user")
    hit = await api.client.get("/user")

    assert miss.json() == hit.json() == {"name": "Ada"}
    assert hit.headers["x-cache"] == "HIT"


async def test_a_returned_response_is_replayed_with_its_status_headers_and_body(api: App) -> None:
    @api.route("/text")
    async def text() -> PlainTextResponse:
        api.calls["text"] += 1
        return PlainTextResponse("héllo", status_code=203, headers={"X-Source": "origin"})

    await api.client.get("/text")
    hit = await api.client.get("/text")

    assert (hit.status_code, hit.text, hit.headers["x-source"]) == (203, "héllo", "origin")
    assert hit.headers["content-type"].startswith("text/plain") and hit.headers["x-cache"] == "HIT"
    assert hit.headers["content-length"] == str(len("héllo".encode()))
    assert api.calls["text"] == 1


async def test_headers_an_endpoint_sets_are_replayed(api: App) -> None:
    @api.route("/tagged")
    async def tagged(response: Response) -> dict[str, bool]:
        response.headers["X-Version"] = "7"
        return {"ok": True}

    await api.client.get("/tagged")
    hit = await api.client.get("/tagged")

    assert (hit.headers["x-version"], hit.headers["x-cache"]) == ("7", "HIT")


async def test_sync_endpoints_are_cached_too(api: App) -> None:
    @api.route("/sync")
    def sync_endpoint() -> dict[str, int]:
        api.calls["sync"] += 1
        return {"n": api.calls["sync"]}

    assert [(await api.client.get("/sync")).json() for _ in range(2)] == [{"n": 1}, {"n": 1}]


async def test_concurrent_identical_requests_run_the_endpoint_once(api: App) -> None:
    @api.route("/slow")
    async def slow() -> dict[str, str]:
        api.calls["slow"] += 1
        await asyncio.sleep(0.1)
        return {"ok": "yes"}

    responses = await asyncio.gather(*(api.client.get("/slow") for _ in range(20)))

    assert all(response.json() == {"ok": "yes"} for response in responses)
    assert api.calls["slow"] == 1


async def test_the_dependency_gives_the_kits_service(api: App) -> None:
    @api.app.get("/stats")
    async def stats(cache: CacheServiceDep) -> dict[str, bool]:
        return {"same": cache is api.kit.service}

    assert (await api.client.get("/stats")).json() == {"same": True}


async def test_without_the_lifespan_the_dependency_says_what_is_missing() -> None:
    app = FastAPI()

    @app.get("/stats")
    async def stats(cache: CacheServiceDep) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="cache_lifespan"):
            await client.get("/stats")


async def test_cached_route_finds_the_kit_of_the_lifespan_when_given_none(api: App) -> None:
    @api.app.get("/implicit")
    @cached_route(ttl=timedelta(minutes=1))
    async def implicit() -> dict[str, int]:
        api.calls["implicit"] += 1
        return {"n": api.calls["implicit"]}

    await api.client.get("/implicit")

    assert (await api.client.get("/implicit")).headers["x-cache"] == "HIT"


async def test_the_lifespan_opens_the_kit_and_runs_the_apps_own_lifespan_inside() -> None:
    kit = compose.cache()
    seen: list[str] = []

    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        seen.append(f"start, kit running: {kit.cleanup_running}")
        yield {"db": "connected"}
        seen.append("stop")

    app = FastAPI(lifespan=cache_lifespan(kit, own))

    async with app.router.lifespan_context(app) as state:
        assert state == {"db": "connected"}
        assert app.state.rediscache_kit is kit

    assert seen == ["start, kit running: True", "stop"]
    assert not kit.cleanup_running


async def test_with_redis_down_routes_keep_answering(private_server: RedisServer, key_prefix: str) -> None:
    kit = compose.cache("redis", redis_url=private_server.url, key_prefix=key_prefix, retries=0)
    api = App(kit)
    api.route("/hello")(counted(api, "hello"))
    async with api.app.router.lifespan_context(api.app), api.client:
        private_server.stop()

        responses = [await api.client.get("/hello") for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert api.calls["hello"] == 3
