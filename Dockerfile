# kfp-interop's images, built by `bash scripts/image.sh` (Docker or podman):
#   full (the default, last stage): every component and reference pipeline runs on it;
#         tagged ghcr.io/kfp-interop/kfp-interop:<package version>, the reference the
#         compiled YAML names.
#   serving (--target serving): the Open Inference Protocol server only
#         (requirements-serving.txt: no training, conversion, PyTorch, MLflow or Flower); tagged
#         ghcr.io/kfp-interop/kfp-interop-serving:<package version>, the image the
#         ServingRuntime manifests name.
# Build arguments:
#   BASE_IMAGE           any Debian/Ubuntu image with Python >= 3.10 and python3-venv
#                        (default python:3.11-slim; scripts/image.sh makes a Debian base
#                        with debootstrap where no registry can be reached)
#   EXTRAS               the full image's extras (add tensorflow for SavedModels/Keras-TF)
#   PIP_EXTRA_INDEX_URL  where the CPU build of PyTorch comes from (default: PyTorch's CPU
#                        index; a plain PyPI torch is the multi-GB CUDA build)
#   PIP_FIND_LINKS       a folder of local wheels (mount it into the build)
#   PIP_CERT             a CA bundle for the package index (mount it into the build)
# Every Python package is pinned by constraints.txt and installed into /opt/venv (on PATH).
# Neither image holds a compiler; both run as uid 1000.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
# LightGBM and XGBoost need OpenMP's runtime (libgomp1); python:3.11-slim lacks it.
RUN set -eu; \
    python3 -c 'import sys; assert sys.version_info >= (3, 10), sys.version'; \
    if ! ldconfig -p | grep -q 'libgomp\.so\.1'; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -m venv /opt/venv; \
    useradd --create-home --uid 1000 --user-group kfp
WORKDIR /opt/kfp-interop
# dependencies first, the package last: a code change rebuilds only the last layer
COPY constraints.txt requirements-serving.txt setup.py README.md ./
COPY scripts/requirements.py ./scripts/

FROM base AS serving
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_FIND_LINKS=
ARG PIP_CERT=
# the server's own requirements only (requirements-serving.txt), then the package alone
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi; \
    pip install -c constraints.txt -r requirements-serving.txt
COPY sdk ./sdk
COPY components ./components
COPY pipelines ./pipelines
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi; \
    pip install --no-deps . \
    && python -c "import kfp_interop.serving.app" \
    && rm -rf /opt/kfp-interop/build /root/.cache \
    && ! command -v gcc && ! command -v cc
USER 1000
EXPOSE 8080
CMD ["kfp-interop", "serve", "/mnt/models", "--host", "0.0.0.0", "--port", "8080"]

FROM base AS full
ARG EXTRAS=serve,mlflow,torch,federated,dask
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=
ARG PIP_CERT=
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi; \
    python3 scripts/requirements.py "${EXTRAS}" > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY sdk ./sdk
COPY components ./components
COPY pipelines ./pipelines
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi; \
    pip install --no-deps . && pip check \
    && python -c "import kfp, kfp_interop.components, kfp_interop.serving.app" \
    && rm -rf /opt/kfp-interop/build /root/.cache \
    && ! command -v gcc && ! command -v cc
USER 1000
EXPOSE 8080
# As a pipeline task, KFP gives the command; alone, the image serves /mnt/models.
CMD ["kfp-interop", "serve", "/mnt/models", "--host", "0.0.0.0", "--port", "8080"]
