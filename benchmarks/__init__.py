"""Offline benchmark scripts, one per stage (see BENCHMARKS.md): `python -m benchmarks.bench_fit`, ..."""
