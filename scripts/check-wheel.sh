#!/usr/bin/env bash
# Build the wheel, install it (not editable) in a clean venv, and prove the installed package
# finds and reads its Lua scripts from inside site-packages.
set -euo pipefail
python=${1:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m build --wheel --no-isolation --outdir "$work/dist" . >/dev/null
wheel=$(ls "$work"/dist/rediscache_native-*.whl)
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import sysconfig
from pathlib import Path

import rediscache
from rediscache.redis.scripts import SCRIPT_NAMES, lua_dir, script

site = Path(sysconfig.get_paths()["purelib"]).resolve()
folder = lua_dir().resolve()
assert folder.is_relative_to(site), f"scripts read from {folder}, not from the installed wheel in {site}"
for name in SCRIPT_NAMES:
    body = script(name).source
    assert b"KEYS" in body and len(body) > 200, name
assert (Path(rediscache.__file__).parent / "py.typed").is_file(), "py.typed missing from the wheel"
print(f"wheel ok: {len(SCRIPT_NAMES)} scripts read from {folder}")
PY
