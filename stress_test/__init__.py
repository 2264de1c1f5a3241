"""Benchmarks, load tools and the hardware report; run from the repository root as `python -m stress_test.<tool>`."""
