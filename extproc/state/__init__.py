"""State shared by every worker and replica: token budgets, rate-limit windows, client behaviour and
revocation events, in process memory (one worker) or in Redis (every worker of every replica)."""
