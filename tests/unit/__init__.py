"""Unit tier: pure Python in one process; no sockets, no subprocesses."""
