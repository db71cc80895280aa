# The prediction server: `zoo serve` on a mounted model repository, as a non-root user.
#
#   docker build -t zoo .
#   docker run -p 8500:8500 -p 8502:8502 -v "$PWD/model_repo:/models:ro" zoo
#
# The set-up is scripts/setup.sh, the same pinned installation the README and CI use.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/zoo/.venv/bin:$PATH

WORKDIR /opt/zoo
COPY requirements.txt pyproject.toml README.md ./
COPY scripts/ scripts/
COPY zoo/ zoo/
COPY models/ models/
COPY training/ training/
COPY serving/ serving/
COPY bench/ bench/
COPY data/ data/
COPY configs/ configs/
RUN scripts/setup.sh && rm -rf /root/.cache/pip

RUN useradd --system --uid 10001 --home-dir /home/zoo --create-home zoo
USER zoo

# gRPC (TF Serving API, Open Inference Protocol, health, reflection) and Prometheus metrics.
EXPOSE 8500 8502
VOLUME ["/models"]

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "serving.healthcheck", "localhost:8500"]

ENTRYPOINT ["zoo", "serve"]
CMD ["--model-repo", "/models", "--port", "8500", "--metrics-port", "8502"]
