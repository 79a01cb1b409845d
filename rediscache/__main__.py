"""``python -m rediscache``: the operators' command (``rediscache --help``)."""

from rediscache.cli import main

if __name__ == "__main__":
    main()
