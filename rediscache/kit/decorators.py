"""``@cached``: cache the results of an async function or method through a ``CacheService``.

::

    @cached(service, ttl=timedelta(minutes=5), namespace="users", tags=["user"])
    async def load_user(user_id: int) -> User: ...

    await load_user(42)                 # computed once, then served from the cache
    await load_user.invalidate(42)      # drop exactly that call's entry

Keys come from ``CacheKey.from_function_call`` (module, qualified name and a digest of the arguments
bound to the signature, so ``f(1, b=2)`` and ``f(a=1, b=2)`` share an entry), unless ``key_func`` is
given. Calls go through ``CacheService.get_or_set``, so they get its stampede protection and its
fail-open behaviour.

Methods: ``self`` or ``cls`` is left out of the key, so every instance shares the entries of one call
(put what distinguishes instances in the arguments, or pass ``key_func``). This holds for methods
reached through an instance or a class, and for class methods with either decorator order
(``@cached`` above ``@classmethod`` keeps the exact types for mypy). A plain function whose first
parameter is named ``self`` or ``cls`` is treated as a method.

Typing: the decorated object keeps the wrapped signature (``ParamSpec``), for calls and for
``invalidate``, on functions, instance methods and class methods.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from rediscache._models import CacheKey, validate_ttl
from rediscache.kit.service import CacheService

__all__ = ["BoundCachedFunction", "CachedFunction", "cached"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

KeyFunc = Callable[..., "str | CacheKey"]

_METHOD_FIRST_PARAMETERS = ("self", "cls")


class CachedFunction(Generic[P, R]):
    """An async callable whose results are cached; ``invalidate(*args, **kwargs)`` drops one call's entry."""

    # Copied from the wrapped function by functools.update_wrapper; declared for type checkers.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Awaitable[R]]

    def __init__(
        self,
        func: Callable[P, Awaitable[R]],
        service: CacheService,
        *,
        ttl: timedelta | None,
        namespace: str | None,
        tags: Sequence[str] | None,
        key_func: KeyFunc | None,
        is_classmethod: bool = False,
    ) -> None:
        self.__wrapped__ = func
        self._service = service
        self._ttl = ttl
        self._namespace = namespace
        self._tags = list(tags) if tags is not None else None
        self._key_func = key_func
        self._is_classmethod = is_classmethod
        params = list(inspect.signature(func).parameters.values())
        self._first_is_receiver = bool(params) and params[0].name in _METHOD_FIRST_PARAMETERS
        functools.update_wrapper(self, func)

    @property
    def service(self) -> CacheService:
        return self._service

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = self.cache_key(*args, **kwargs)
        func = self.__wrapped__
        result: R = await self._service.get_or_set(key, lambda: func(*args, **kwargs), ttl=self._ttl)
        return result

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the cached result of this call; ``True`` if there was one."""
        return await self._service.delete(self.cache_key(*args, **kwargs))

    def cache_key(self, *args: Any, **kwargs: Any) -> CacheKey:
        """The key a call with these arguments reads and writes."""
        if self._first_is_receiver and args:
            return self._key(args[0], args[1:], kwargs)
        return self._key(None, args, kwargs)

    def _key(self, receiver: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CacheKey:
        namespace = self._namespace if self._namespace is not None else self._service.default_namespace
        func: Callable[..., Any] = self.__wrapped__
        if self._key_func is not None:
            made = self._key_func(*args, **kwargs) if receiver is None else self._key_func(receiver, *args, **kwargs)
            if isinstance(made, CacheKey):
                return made
            if not isinstance(made, str):
                raise TypeError(f"key_func must return a str or a CacheKey, not {type(made).__name__}")
            return CacheKey(key=made, namespace=namespace, tags=self._tags or [])
        if receiver is not None:
            # A bound method's signature has no self/cls, and it keeps the function's module and
            # qualified name: the key names the method, whatever the instance.
            func = MethodType(func, receiver)
        return CacheKey.from_function_call(func, args, kwargs, namespace=namespace, tags=self._tags)

    @overload
    def __get__(
        self: CachedFunction[Concatenate[type[S], P2], R], instance: S | None, owner: type[S]
    ) -> BoundCachedFunction[P2, R]: ...

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> CachedFunction[P, R]: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, P2], R], instance: S, owner: type[Any]
    ) -> BoundCachedFunction[P2, R]: ...

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Any:
        if self._is_classmethod:
            return BoundCachedFunction(self, owner if owner is not None else type(instance))
        if instance is None:
            return self
        return BoundCachedFunction(self, instance)

    def __repr__(self) -> str:
        return f"<cached {self.__wrapped__!r}>"


class BoundCachedFunction(Generic[P, R]):
    """A ``CachedFunction`` bound to an instance or class: called without ``self``/``cls``, which the key leaves out."""

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Awaitable[R]]

    def __init__(self, cached_function: CachedFunction[Any, R], receiver: object) -> None:
        self.__func__ = cached_function
        self.__self__ = receiver
        self.__wrapped__ = cached_function.__wrapped__
        functools.update_wrapper(self, cached_function.__wrapped__)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        cached_function = self.__func__
        key = cached_function._key(self.__self__, args, kwargs)
        func, receiver = cached_function.__wrapped__, self.__self__
        result: R = await cached_function.service.get_or_set(
            key, lambda: func(receiver, *args, **kwargs), ttl=cached_function._ttl
        )
        return result

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the cached result of this call; ``True`` if there was one."""
        return await self.__func__.service.delete(self.cache_key(*args, **kwargs))

    def cache_key(self, *args: Any, **kwargs: Any) -> CacheKey:
        """The key a call with these arguments reads and writes."""
        return self.__func__._key(self.__self__, args, kwargs)

    def __repr__(self) -> str:
        return f"<bound cached {self.__wrapped__!r} of {self.__self__!r}>"


class _Decorator:
    """What ``cached(...)`` returns: applied to an async function (or a ``classmethod`` of one)."""

    def __init__(
        self,
        service: CacheService,
        ttl: timedelta | None,
        namespace: str | None,
        tags: Sequence[str] | None,
        key_func: KeyFunc | None,
    ) -> None:
        self._service = service
        self._ttl = ttl
        self._namespace = namespace
        self._tags = tags
        self._key_func = key_func

    def __call__(self, func: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        is_classmethod = isinstance(func, classmethod)
        target: Any = func.__func__ if isinstance(func, classmethod) else func
        if isinstance(target, (staticmethod, CachedFunction)) or not inspect.iscoroutinefunction(target):
            raise TypeError(
                f"@cached applies to async functions and methods, not {target!r}"
                " (for a sync function, call service.get_or_set yourself)"
            )
        return CachedFunction(
            target,
            self._service,
            ttl=self._ttl,
            namespace=self._namespace,
            tags=self._tags,
            key_func=self._key_func,
            is_classmethod=is_classmethod,
        )


def cached(
    cache_service: CacheService,
    ttl: timedelta | None = None,
    namespace: str | None = None,
    tags: Sequence[str] | None = None,
    key_func: KeyFunc | None = None,
) -> _Decorator:
    """Cache an async function's results in ``cache_service``.

    Args:
        cache_service: where the results go; its default TTL and namespace apply when these are ``None``.
        ttl: lifetime of each result (default: the service's ``default_ttl``).
        namespace: namespace of the entries (default: the service's ``default_namespace``).
        tags: tags of every entry, for ``cache_service.invalidate_tags``.
        key_func: called with the call's arguments (``self``/``cls`` included for methods) and returning
            the key as a ``str`` (namespace and tags above apply) or a whole ``CacheKey`` (used as it is).
            Needed when an argument has no stable encoding (``from_function_call`` raises ``TypeError``).
    """
    if not isinstance(cache_service, CacheService):
        raise TypeError(f"cached() needs a CacheService first, not {type(cache_service).__name__}")
    if isinstance(tags, str):
        raise ValueError("tags must be a list of str, not a str")
    # Check the settings now, at import time of the decorated code, not on its first call.
    validate_ttl(ttl)
    CacheKey(key="-", namespace=namespace, tags=list(tags or []))
    return _Decorator(cache_service, ttl, namespace, tags, key_func)
