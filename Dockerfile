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
# gcc only for the install: it compiles the attack model's C kernel (extproc/attack/_ngram_bag.c)
# and the bot model's tree walker (extproc/bot/_trees.c), which the image must have (without them
# the models fall back to the slower onnxruntime engine).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --editable . \
    && python -c "import extproc.attack._ngram_bag, extproc.bot._trees" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && python -m compileall -q extproc \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin extproc \
    && install -d -o 10001 -g 10001 -m 0750 /run/extproc

USER 10001:10001
# gRPC health (probes), Prometheus /metrics. ext_proc itself is a Unix socket in /run/extproc:
# mount a volume there that Envoy shares (see deploy/k8s), or give --address 127.0.0.1:PORT when
# Envoy shares the network namespace, or mutual TLS (--tls-cert, --tls-key, --client-ca).
EXPOSE 50052 9464
ENTRYPOINT ["extproc"]
CMD ["serve", "--config", "/etc/extproc/policy/policy.yaml", "--address", "unix:/run/extproc/extproc.sock", "--health-address", "0.0.0.0:50052", "--metrics-address", "0.0.0.0:9464", "--public-metrics"]
