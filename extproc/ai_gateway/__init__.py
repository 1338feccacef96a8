"""AI gateway: identity, budgets, scanning and visibility for LLM API traffic."""
