"""`extproc bench`: per-layer and pipeline latency in-process, Envoy end to end, memory, workers."""
