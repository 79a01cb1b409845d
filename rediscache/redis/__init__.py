"""Everything that knows Redis: the layout and storage format, the scripts, the transports.

The adapters in ``rediscache.adapters`` use this package; applications use the adapters (and
``rediscache.ConnectionOptions``). The modules, one job each:

- :mod:`.layout`: key names, shards and their hash tags, and the encodings of what is stored;
- :mod:`.scripts`: the Lua scripts, read from the files shipped in the package;
- :mod:`.options`: ``ConnectionOptions``, the deadlines in layers;
- :mod:`.errors`: redis-py's errors turned into rediscache's, and what an error answer means;
- :mod:`.watchdog`, :mod:`.pool`: deadlines for commands in flight, and connections to one server;
- :mod:`.transport`: the base class of the transports and one server's link;
  :mod:`.standalone` and :mod:`.cluster`: the two transports.

Nothing here is public API but what ``rediscache`` re-exports; names may change between releases.
"""
