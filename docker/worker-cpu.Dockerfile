# CPU worker: runs any VideoMDM flow from a Prefect process work pool; the same image serves
# the Prefect server in docker/compose.yaml and can join a Ray cluster (the `ray` extra).
#   docker build -f docker/worker-cpu.Dockerfile -t videomdm-worker:cpu .
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 videomdm \
    && mkdir -p /lake /weights && chown videomdm:videomdm /lake /weights
WORKDIR /app

# torch from its CPU index first, so the package's torch range pulls nothing more.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" \
    --index-url https://download.pytorch.org/whl/cpu
# Dependencies in their own layer (an empty package stands in for the code), so editing the
# code does not reinstall them; the editable install then finds the real code copied below.
COPY pyproject.toml README.md ./
RUN mkdir videomdm && touch videomdm/__init__.py \
    && pip install --no-cache-dir -e ".[ray]"
COPY videomdm ./videomdm
COPY prefect.yaml ./

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    VIDEOMDM_HOME=/app \
    VIDEOMDM_LAKE=/lake \
    VIDEOMDM_WEIGHTS_DIR=/weights
USER videomdm
VOLUME ["/lake", "/weights"]
CMD ["prefect", "worker", "start", "--pool", "default", "--type", "process"]
