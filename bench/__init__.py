"""`make bench`: a load generator that drives purchase sagas through the edge and
measures them (docs/adr/0010-e2e-and-bench.md). Run `python -m bench --help`."""
