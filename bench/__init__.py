"""Benchmarks for sleepbot. Run ``python -m bench.reminders --help``; see bench/README.md."""
