"""The session cache (DESIGN §24): validated sessions kept in process, dropped the moment
any process changes them, through PostgreSQL ``LISTEN/NOTIFY``."""
