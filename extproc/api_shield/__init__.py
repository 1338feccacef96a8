"""API Shield: an OpenAPI positive security model, and schema learning from traffic."""
