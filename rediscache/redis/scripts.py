"""The Lua scripts, read from the files that ship inside the package.

Each script in ``lua/`` is one operation; ``_lib.lua`` holds the helpers they share and is
prepended to each of them, so every script stays self-contained on the server (Redis has no
``require``). In a wheel the folder is ``rediscache/lua``; in a source checkout it is the
repository's top-level ``lua/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

__all__ = ["SCRIPT_NAMES", "Script", "lua_dir", "script"]

SCRIPT_NAMES = (
    "set", "set_many", "delete", "invalidate", "cleanup", "stats", "flush", "unlock",
    "repair", "recount",  # fsck --repair (rediscache/redis/introspect.py)
)  # fmt: skip


@dataclass(frozen=True)
class Script:
    name: str
    source: bytes
    sha: str


def lua_dir() -> Path:
    """Where the ``.lua`` files are: inside the installed package, else the source checkout."""
    packaged = resources.files("rediscache") / "lua"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / "lua"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"rediscache's Lua scripts are missing: looked in {packaged} and {checkout}")


@cache
def script(name: str) -> Script:
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no Lua script named {name!r}")
    folder = lua_dir()
    source = (folder / "_lib.lua").read_bytes() + b"\n" + (folder / f"{name}.lua").read_bytes()
    return Script(name=name, source=source, sha=hashlib.sha1(source).hexdigest())
