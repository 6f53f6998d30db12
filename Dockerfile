# The one image every kfp-interop component runs on, tagged with the package version
# (sdk/kfp_interop/_version.py; the compiled YAML names ghcr.io/kfp-interop/kfp-interop:<version>):
#   docker build -t ghcr.io/kfp-interop/kfp-interop:$(python -c "exec(open('sdk/kfp_interop/_version.py').read()); print(__version__)") .
# A private registry's copy, by digest: kfp-interop compile --all --image REGISTRY/kfp-interop@sha256:...
# Every Python package is pinned by constraints.txt; PyTorch is its CPU build (the
# default index would pull the multi-GB CUDA one). Add the TensorFlow path with
#   --build-arg EXTRAS=serve,mlflow,torch,tensorflow
FROM python:3.11-slim

ARG EXTRAS=serve,mlflow,torch,federated
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kfp-interop
COPY constraints.txt setup.py README.md ./
COPY sdk ./sdk
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        -c constraints.txt ".[${EXTRAS}]" \
    && python -c "import kfp, kfp_interop.components, kfp_interop.serving"
RUN useradd --create-home --uid 1000 kfp
USER 1000
EXPOSE 8080
# As a KServe ServingRuntime's container (manifests/servingruntime.yaml) the image serves
# one model; as a pipeline task, KFP gives the command.
CMD ["kfp-interop", "serve", "/mnt/models", "--host", "0.0.0.0", "--port", "8080"]
