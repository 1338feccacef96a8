# The extproc sidecar: the package with its models and crawler ranges, run as a non-root user.
#   docker build -t extproc:0.1.0 .
# deploy/k8s runs it with a read-only root filesystem and the policy mounted at /etc/extproc/policy.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY extproc ./extproc
# The models and the crawler ranges are found next to the package (extproc/../models), so the
# package is installed in place (editable) rather than copied into site-packages without them.
COPY models ./models
COPY deploy/bot ./deploy/bot
RUN pip install --editable . \
    && python -m compileall -q extproc \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin extproc

USER 10001:10001
# gRPC (ext_proc and health), Prometheus /metrics
EXPOSE 50051 9464
ENTRYPOINT ["extproc"]
CMD ["serve", "--config", "/etc/extproc/policy/policy.yaml", "--address", "0.0.0.0:50051", "--metrics-address", "0.0.0.0:9464"]
