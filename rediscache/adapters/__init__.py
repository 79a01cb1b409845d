"""Cache adapters: the backends that implement the ``CacheAdapter`` port."""
