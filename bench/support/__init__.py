"""What the benchmarks share: the harness, businesses, CPU accounting, side processes."""
