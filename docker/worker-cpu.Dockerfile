# CPU worker: runs any VideoMDM flow from a Prefect process work pool.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY videomdm ./videomdm
RUN pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir -e .
COPY prefect.yaml ./
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    VIDEOMDM_LAKE=/lake \
    VIDEOMDM_WEIGHTS_DIR=/weights
VOLUME ["/lake", "/weights"]
CMD ["prefect", "worker", "start", "--pool", "default", "--type", "process"]
