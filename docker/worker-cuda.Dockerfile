# GPU worker: ONNX Runtime on CUDA for perception, a CUDA build of torch for training.
#   docker build -f docker/worker-cuda.Dockerfile -t videomdm-worker:cuda .
# Built on the user's machine (needs the NVIDIA Container Toolkit to run, not to build).
# The torch wheel bundles its own CUDA libraries; onnxruntime-gpu uses the base image's
# CUDA 12 and cuDNN 9. Pick TORCH_INDEX to match the host driver (cu126, cu128, ...).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && (userdel --remove ubuntu 2>/dev/null || true) \
    && useradd --create-home --uid 1000 videomdm \
    && mkdir -p /lake /weights && chown videomdm:videomdm /lake /weights
# Ubuntu's Python is externally managed (PEP 668): everything goes into a venv.
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
# The package needs `onnxruntime`; swap it for the GPU build (both install the same module,
# so the CPU one is removed first rather than overwritten).
RUN mkdir videomdm && touch videomdm/__init__.py \
    && pip install --no-cache-dir -e ".[ray]" \
    && pip uninstall -y onnxruntime \
    && pip install --no-cache-dir onnxruntime-gpu
COPY videomdm ./videomdm
COPY prefect.yaml ./

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    VIDEOMDM_HOME=/app \
    VIDEOMDM_LAKE=/lake \
    VIDEOMDM_WEIGHTS_DIR=/weights \
    VIDEOMDM_DEVICE=cuda
USER videomdm
VOLUME ["/lake", "/weights"]
CMD ["prefect", "worker", "start", "--pool", "gpu", "--type", "process"]
