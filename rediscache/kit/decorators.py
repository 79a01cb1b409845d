"""``@cached``: cache the results of an async function or method through a ``CacheService``.

::

    @cached(service, ttl=timedelta(minutes=5), namespace="users", tags=["user"])
    async def load_user(user_id: int) -> User: ...

    await load_user(42)                 # computed once, then served from the cache
    await load_user.invalidate(42)      # drop exactly that call's entry

Keys come from ``CacheKey.from_function_call`` (module, qualified name and a digest of the arguments
bound to the signature, so ``f(1, b=2)`` and ``f(a=1, b=2)`` share an entry), unless ``key`` (a
template such as ``"user:{user_id}"``, formatted with the bound arguments) or ``key_func`` is given.
Calls go through ``CacheService.get_or_set``, so they get its stampede protection, its fail-open
behaviour and the service's :class:`~rediscache.kit.options.EntryOptions` (with ``options=`` over them).

Per call, from the arguments: ``namespace`` and ``tags`` may be callables, called with the decorated
function's arguments (``tags=lambda tenant, user_id: [f"tenant:{tenant}"]``). From the result:
``ttl`` may be a callable of the result, and ``condition(result)`` false means the result is returned
but not stored.

Methods: ``self`` or ``cls`` is left out of the key, so every instance shares the entries of one call
(put what distinguishes instances in the arguments, or pass ``key_func``). This holds for methods
reached through an instance or a class, and for class methods with either decorator order
(``@cached`` above ``@classmethod`` keeps the exact types for mypy). A plain function whose first
parameter is named ``self`` or ``cls`` is treated as a method. ``key_func``, ``key`` templates and the
``namespace``/``tags`` callables do receive ``self``/``cls``, as the function does.

Typing: the decorated object keeps the wrapped signature (``ParamSpec``), for calls and for
``invalidate``, on functions, instance methods and class methods; a ``key_func`` is checked against
the decorated function's parameters, so one of the wrong arity fails ``mypy --strict``.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from rediscache._models import CacheKey, validate_ttl
from rediscache.kit.options import EntryOptions
from rediscache.kit.service import CacheService

__all__ = ["BoundCachedFunction", "CachedFunction", "cached"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

KeyFunc = Callable[..., "str | CacheKey"]
#: A TTL: a ``timedelta``, a number of seconds, or a callable of the result giving either (or ``None``).
TtlSpec = timedelta | int | float | Callable[[Any], "timedelta | int | float | None"] | None
#: A namespace: a value, or a callable of the decorated function's arguments.
NamespaceSpec = str | Callable[..., "str | None"] | None
#: Tags: a list, or a callable of the decorated function's arguments returning one.
TagsSpec = Sequence[str] | Callable[..., Sequence[str]] | None

_METHOD_FIRST_PARAMETERS = ("self", "cls")


def _as_timedelta(what: str, value: object) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return validate_ttl(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a timedelta, a number of seconds or None, not {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return timedelta(seconds=value)


def _template_fields(template: str, func: Callable[..., Any]) -> None:
    """Check a key template against the function's parameters now, at decoration time."""
    names = set(inspect.signature(func).parameters)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"key template {template!r} is not a valid format string: {exc}") from None
    for _, field, _, _ in parsed:
        if field is None:
            continue
        root = field.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            raise ValueError(f"key template {template!r}: fields must name parameters ({{user_id}}), not {field!r}")
        if root not in names:
            raise ValueError(
                f"key template {template!r} names {root!r}, which is not a parameter of {func.__qualname__}"
            )


class _Settings:
    """What a ``@cached`` declaration says, checked once."""

    def __init__(
        self,
        service: CacheService,
        ttl: TtlSpec,
        namespace: NamespaceSpec,
        tags: TagsSpec,
        key_func: KeyFunc | None,
        key: str | None,
        condition: Callable[[Any], bool] | None,
        options: EntryOptions | None,
    ) -> None:
        if not isinstance(service, CacheService):
            raise TypeError(f"cached() needs a CacheService first, not {type(service).__name__}")
        if isinstance(tags, str):
            raise ValueError("tags must be a list of str (or a callable returning one), not a str")
        if key is not None and key_func is not None:
            raise ValueError("pass key or key_func, not both")
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError("key must be a non-empty template string such as 'user:{user_id}'")
        if condition is not None and not callable(condition):
            raise TypeError("condition must be a callable of the result")
        if options is not None and not isinstance(options, EntryOptions):
            raise TypeError(f"options must be EntryOptions, not {type(options).__name__}")
        self.service = service
        self.ttl_of: Callable[[Any], Any] | None = ttl if callable(ttl) else None
        fixed_ttl = None if callable(ttl) else _as_timedelta("ttl", ttl)
        # The service's defaults are fixed when it is built: resolve them once, not per call.
        self.ttl, self.options = service.resolve(fixed_ttl, options)
        self.namespace = namespace
        self.tags = tags
        self.key_func = key_func
        self.key = key
        self.condition = condition
        # Check the static parts now, at import time of the decorated code, not on its first call.
        CacheKey(
            key="-",
            namespace=namespace if isinstance(namespace, str) else None,
            tags=list(tags) if tags is not None and not callable(tags) else [],
        )

    def ttl_for(self, result: Any) -> timedelta | None:
        assert self.ttl_of is not None
        made = _as_timedelta("ttl(result)", self.ttl_of(result))
        return made if made is not None else self.ttl


class CachedFunction(Generic[P, R]):
    """An async callable whose results are cached; ``invalidate(*args, **kwargs)`` drops one call's entry."""

    # Copied from the wrapped function by functools.update_wrapper; declared for type checkers.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Awaitable[R]]

    def __init__(
        self,
        func: Callable[P, Awaitable[R]],
        settings: _Settings,
        *,
        is_classmethod: bool = False,
    ) -> None:
        self.__wrapped__ = func
        self._settings = settings
        self._is_classmethod = is_classmethod
        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        self._signature = signature
        self._first_is_receiver = bool(params) and params[0].name in _METHOD_FIRST_PARAMETERS
        if settings.key is not None:
            _template_fields(settings.key, func)
        functools.update_wrapper(self, func)

    @property
    def service(self) -> CacheService:
        return self._settings.service

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        func = self.__wrapped__
        if self._first_is_receiver and args:
            return await self._run(args[0], args[1:], kwargs, lambda: func(*args, **kwargs))
        return await self._run(None, args, kwargs, lambda: func(*args, **kwargs))

    async def _run(
        self, receiver: object, args: tuple[Any, ...], kwargs: dict[str, Any], factory: Callable[[], Awaitable[R]]
    ) -> R:
        settings = self._settings
        result: R = await settings.service.run_get_or_set(
            self._key(receiver, args, kwargs),
            factory,
            settings.ttl,
            settings.options,
            ttl_of=settings.ttl_for if settings.ttl_of is not None else None,
            condition=settings.condition,
        )
        return result

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the cached result of this call; ``True`` if there was one."""
        return await self.service.delete(self.cache_key(*args, **kwargs))

    def cache_key(self, *args: Any, **kwargs: Any) -> CacheKey:
        """The key a call with these arguments reads and writes."""
        if self._first_is_receiver and args:
            return self._key(args[0], args[1:], kwargs)
        return self._key(None, args, kwargs)

    def _key(self, receiver: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CacheKey:
        settings = self._settings
        full = args if receiver is None else (receiver, *args)
        namespace_spec, tags_spec = settings.namespace, settings.tags
        namespace = namespace_spec(*full, **kwargs) if callable(namespace_spec) else namespace_spec
        if namespace is None:
            namespace = settings.service.default_namespace
        made_tags = tags_spec(*full, **kwargs) if callable(tags_spec) else tags_spec
        if isinstance(made_tags, str):
            raise ValueError("tags must be a list of str, not a str")
        tags = None if made_tags is None else list(made_tags)
        if settings.key_func is not None:
            made = settings.key_func(*full, **kwargs)
            if isinstance(made, CacheKey):
                return made
            if not isinstance(made, str):
                raise TypeError(f"key_func must return a str or a CacheKey, not {type(made).__name__}")
            return CacheKey(key=made, namespace=namespace, tags=tags or [])
        if settings.key is not None:
            bound = self._signature.bind(*full, **kwargs)
            bound.apply_defaults()
            return CacheKey(key=settings.key.format(**bound.arguments), namespace=namespace, tags=tags or [])
        func: Callable[..., Any] = self.__wrapped__
        if receiver is not None:
            # A bound method's signature has no self/cls, and it keeps the function's module and
            # qualified name: the key names the method, whatever the instance.
            func = MethodType(func, receiver)
        return CacheKey.from_function_call(func, args, kwargs, namespace=namespace, tags=tags)

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
        func, receiver = self.__wrapped__, self.__self__
        return await self.__func__._run(receiver, args, kwargs, lambda: func(receiver, *args, **kwargs))

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the cached result of this call; ``True`` if there was one."""
        return await self.__func__.service.delete(self.cache_key(*args, **kwargs))

    def cache_key(self, *args: Any, **kwargs: Any) -> CacheKey:
        """The key a call with these arguments reads and writes."""
        return self.__func__._key(self.__self__, args, kwargs)

    def __repr__(self) -> str:
        return f"<bound cached {self.__wrapped__!r} of {self.__self__!r}>"


def _wrap(func: Any, settings: _Settings) -> Any:
    is_classmethod = isinstance(func, classmethod)
    target: Any = func.__func__ if isinstance(func, classmethod) else func
    if isinstance(target, (staticmethod, CachedFunction)) or not inspect.iscoroutinefunction(target):
        raise TypeError(
            f"@cached applies to async functions and methods, not {target!r}"
            " (for a sync function, call service.get_or_set yourself)"
        )
    return CachedFunction(target, settings, is_classmethod=is_classmethod)


class _Decorator:
    """What ``cached(...)`` returns without ``key_func``: applies to any async function (or a
    ``classmethod`` of one)."""

    def __init__(self, settings: _Settings) -> None:
        self._settings = settings

    def __call__(self, func: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        wrapped: CachedFunction[P, R] = _wrap(func, self._settings)
        return wrapped


class _KeyedDecorator(Generic[P]):
    """What ``cached(..., key_func=f)`` returns: applies to async functions whose parameters are
    ``f``'s (so mypy rejects a ``key_func`` that does not fit the function)."""

    def __init__(self, settings: _Settings) -> None:
        self._settings = settings

    def __call__(self, func: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        wrapped: CachedFunction[P, R] = _wrap(func, self._settings)
        return wrapped


@overload
def cached(
    cache_service: CacheService,
    ttl: TtlSpec = None,
    namespace: NamespaceSpec = None,
    tags: TagsSpec = None,
    key_func: None = None,
    *,
    key: str | None = None,
    condition: Callable[[Any], bool] | None = None,
    options: EntryOptions | None = None,
) -> _Decorator: ...


@overload
def cached(
    cache_service: CacheService,
    ttl: TtlSpec,
    namespace: NamespaceSpec,
    tags: TagsSpec,
    key_func: Callable[P, str | CacheKey],
    *,
    key: None = None,
    condition: Callable[[Any], bool] | None = None,
    options: EntryOptions | None = None,
) -> _KeyedDecorator[P]: ...


@overload
def cached(
    cache_service: CacheService,
    ttl: TtlSpec = None,
    namespace: NamespaceSpec = None,
    tags: TagsSpec = None,
    *,
    key_func: Callable[P, str | CacheKey],
    key: None = None,
    condition: Callable[[Any], bool] | None = None,
    options: EntryOptions | None = None,
) -> _KeyedDecorator[P]: ...


def cached(
    cache_service: CacheService,
    ttl: TtlSpec = None,
    namespace: NamespaceSpec = None,
    tags: TagsSpec = None,
    key_func: Callable[..., str | CacheKey] | None = None,
    *,
    key: str | None = None,
    condition: Callable[[Any], bool] | None = None,
    options: EntryOptions | None = None,
) -> _Decorator | _KeyedDecorator[Any]:
    """Cache an async function's results in ``cache_service``.

    Args:
        cache_service: where the results go; its default TTL, namespace and options apply when these are ``None``.
        ttl: lifetime of each result: a ``timedelta``, a number of seconds, or a callable of the result
            returning either (``None``: the default). Default: ``options.ttl``, else the service's.
        namespace: namespace of the entries, or a callable of the function's arguments returning it
            (default: the service's ``default_namespace``).
        tags: tags of every entry (for ``cache_service.invalidate_tags``), or a callable of the
            function's arguments returning them (``lambda tenant, **_: [f"tenant:{tenant}"]``).
        key_func: called with the call's arguments (``self``/``cls`` included for methods) and returning
            the key as a ``str`` (namespace and tags above apply) or a whole ``CacheKey`` (used as it is).
            Needed when an argument has no stable encoding (``from_function_call`` raises ``TypeError``).
            Typed against the decorated function's parameters.
        key: a key template formatted with the call's bound arguments, defaults applied
            (``"user:{user_id}"``, ``"{self.region}:{sku}"``); checked against the parameters at
            decoration time. Namespace and tags above apply.
        condition: ``condition(result)`` false: the result is returned but not stored.
        options: :class:`EntryOptions` over the service's (fail-safe, timeouts, eager refresh, ...).
    """
    settings = _Settings(cache_service, ttl, namespace, tags, key_func, key, condition, options)
    if key_func is not None:
        return _KeyedDecorator(settings)
    return _Decorator(settings)
