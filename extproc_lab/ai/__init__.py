"""Training of the prompt-injection model from generated prompts."""
