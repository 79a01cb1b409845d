"""Runs documentation examples one after the other in this interpreter (``python run_examples.py``):
a JSON list of programs on stdin, a JSON list of ``{"ok", "stdout", "error"}`` on stdout.

One interpreter for many examples pays the imports (pydantic, FastAPI, httpx) once instead of once
per example. Each program gets fresh globals and runs as ``__main__``; its output is captured apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback


def main() -> None:
    programs: list[str] = json.load(sys.stdin)
    results = []
    for code in programs:
        out, err = io.StringIO(), io.StringIO()
        ok = True
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                exec(compile(code, "<example>", "exec"), {"__name__": "__main__"})
            except BaseException:  # SystemExit too: the example failed, the others still run
                ok = False
                traceback.print_exc(file=err)
        results.append({"ok": ok, "stdout": out.getvalue(), "error": err.getvalue()})
    json.dump(results, sys.__stdout__)


if __name__ == "__main__":
    main()
