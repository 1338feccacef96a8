"""Component tier: the in-process gRPC server, loopback servers, our own CLI in a subprocess,
kubectl/kustomize rendering and the mkdocs build; anything short of a real Envoy."""
