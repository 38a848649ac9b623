"""CephaloProxy's benchmarks (docs/benchmarks.md): benchmarks/run is the command.

A package so that each runner (compare.py, and any other side-by-side runner)
shares the containers, the HTTP load, the samples and the table.
"""
