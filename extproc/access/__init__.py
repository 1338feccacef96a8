"""Zero-trust access: federated identity, per-app policy, require access protection, lateral reach."""
