"""The safety domain's rules: no I/O, no grpc, psycopg or kafka imports."""
