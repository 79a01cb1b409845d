"""MkDocs hook: the benchmark chart lives in bench/results/ (where `make bench` writes it); the site
serves it as benchmarks/latest.png without a second copy in the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "bench" / "results" / "latest.png"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "benchmarks/latest.png", abs_src_path=str(CHART)))
    return files
