"""Capacity benchmark of the live debate stream (wrapped by `manage.py bench_stream`)."""
