"""The industry domain's rules: pure functions and dataclasses, no I/O (no grpc, psycopg or kafka)."""
