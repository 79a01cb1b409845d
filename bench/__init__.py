"""The benchmark harness of ``make bench``: see ``bench/README.md``."""
