"""End-to-end tier: HTTP to a real Envoy in front of the real sidecar process."""
