"""`make chaos`: the project's own fault matrix (docs/reliability.md).

For each fault of `faults.FAULTS`: a bounded bench load, the fault injected a few
seconds into it, the drain, the bench's invariants, and per fault the purchases
refused, the ones the fault made fail, the longest stall once the faulted part is
back and the time to the last final state.
"""
