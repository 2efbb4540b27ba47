"""Benchmarks: each module with a ``main()`` prints ``BENCH <name> ratio=<x> target=<y>`` lines."""
