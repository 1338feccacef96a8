"""WAF attack scoring: value extraction, evasion-resistant normalisation, n-gram features, ONNX model."""
