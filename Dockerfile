# The prediction server: `zoo serve` on a mounted model repository, as a non-root user.
#
#   docker build -t zoo .
#   docker run -p 8500:8500 -p 8501:8501 -p 8502:8502 -v "$PWD/model_repo:/models:ro" zoo
#
# The set-up is scripts/setup.sh, the same pinned installation the README and CI use, limited to
# the server's own set (ZOO_SETUP_SERVING=1: requirements-serving.txt, no Keras, training,
# export converters, benchmarks or test tools). The image holds only what the server runs on:
# core/, serving/ and the zoo CLI (which then offers `serve` and `predict`).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/zoo/.venv/bin:$PATH

WORKDIR /opt/zoo
COPY requirements.txt requirements-serving.txt requirements-jax.txt pyproject.toml README.md ./
COPY scripts/ scripts/
COPY core/ core/
COPY serving/ serving/
COPY zoo/ zoo/
RUN ZOO_SETUP_SERVING=1 scripts/setup.sh && rm -rf /root/.cache/pip

RUN useradd --system --uid 10001 --home-dir /home/zoo --create-home zoo
USER zoo

# gRPC (TF Serving API, Open Inference Protocol, health, reflection), REST (both APIs) and
# Prometheus metrics. The
# metrics listen on all of the container's interfaces (outside a container they stay on
# 127.0.0.1 by default): publish 8502 only to your scraper's network, since metrics carry no token.
EXPOSE 8500 8501 8502
VOLUME ["/models"]

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "serving.healthcheck", "localhost:8500"]

ENTRYPOINT ["zoo", "serve"]
CMD ["--model-repo", "/models", "--port", "8500", "--metrics-host", "0.0.0.0", "--metrics-port", "8502"]
