"""The store: tables (``schema``), creating and upgrading them (``upgrade``), the engine
(``engine``, ``watchdog``), and the statements per table family over ``base.StoreBase``."""
