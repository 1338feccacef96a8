"""Training, data generation and evaluation of the attack model."""
