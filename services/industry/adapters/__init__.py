"""Wire formats and caches of the industry service that are neither SQL nor proto translation."""
