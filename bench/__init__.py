"""CityHub's benchmarks (``make bench`` = ``python -m bench``; not part of ``make test``).

Results are printed as a table and written as JSON under bench/results/ with the machine's core count and
the git revision, so figures from different machines and commits can be told apart.
"""
