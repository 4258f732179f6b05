"""Benchmark scripts (run them as files: ``python benchmarks/<name>.py --help``).

Speed figures live here, never in timed tests; the tests only check that the scripts run and
that the quantities they compute (FLOPs, peaks, shares) are right.
"""
