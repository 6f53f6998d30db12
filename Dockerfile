# The one image every kfp-interop component runs on. Tag it with the package version:
#   docker build -t ghcr.io/kfp-interop/kfp-interop:$(python -c "exec(open('sdk/kfp_interop/_version.py').read()); print(__version__)") .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kfp-interop
COPY constraints.txt setup.py README.md ./
COPY sdk ./sdk
COPY components ./components
COPY pipelines ./pipelines
RUN pip install -c constraints.txt ".[serve,mlflow,torch]" && python -c "import kfp, kfp_interop.components"
RUN useradd --create-home --uid 1000 kfp
USER 1000
