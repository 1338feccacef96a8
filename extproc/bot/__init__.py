"""Bot management: user-agent and header consistency, TLS fingerprints, per-client behaviour."""
