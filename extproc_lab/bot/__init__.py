"""Training of the bot model and its card."""
