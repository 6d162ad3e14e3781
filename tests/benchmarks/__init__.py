"""Tests of the benchmark harness (no peer library is imported here)."""
