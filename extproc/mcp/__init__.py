"""MCP portal: identity, per-tool policy, argument scanning and audit for AI-agent traffic."""
