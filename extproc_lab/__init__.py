"""Tooling around the extproc sidecar that never serves a request: training, data generation,
evaluation, the red team and the benchmarks. The serving package (extproc) imports nothing from here."""
