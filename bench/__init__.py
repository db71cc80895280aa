"""Benchmarks measured side by side against a reference in one run; results in bench/results/."""
