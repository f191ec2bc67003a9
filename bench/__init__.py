"""`python -m bench` (what `make bench` runs): eventflow's benchmark against a bare Celery baseline.

It starts its own stack (private Redis, fresh data folder, Daphne, one worker per
queue, the relay sweep), measures the figures of issue 6 on it and stops it all.
The package is also a plugin app (EVENTFLOW_EXTRA_APPS=bench) that adds the
bench-only events, their handlers and the baseline task to every process.
"""
