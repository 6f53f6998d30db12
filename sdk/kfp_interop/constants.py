"""Named constants shared across the library, so a default is stated once.

Component and pipeline defaults must equal these (KFP embeds a component's source, so
its signature holds literals; ``tests/test_layout.py`` checks that they agree).
"""

__all__ = ["DEFAULT_OPSET", "ML_OPSET", "DEFAULT_TOLERANCE", "DEFAULT_SEED",
           "DEFAULT_TEST_SIZE", "INPUT_NAME", "LABEL_OUTPUT", "PROBABILITIES_OUTPUT",
           "VALUE_OUTPUT", "CLASSIFIER_OUTPUTS", "REGRESSOR_OUTPUTS", "ONNX_FILENAME",
           "MODEL_META_FILENAME", "PLATFORM", "TASKS", "IMAGE_REPOSITORY",
           "SERVING_IMAGE_REPOSITORY"]

#: Highest default-domain ONNX opset an export may use (a ceiling, as converters treat
#: ``target_opset``); supported by the ONNX Runtime in KServe's and Seldon's Triton images.
DEFAULT_OPSET = 17
#: The ``ai.onnx.ml`` opset converters may use.
ML_OPSET = 3
#: Parity gate and smoke test tolerance: max probability difference (regression: relative).
DEFAULT_TOLERANCE = 1e-4
DEFAULT_SEED = 42
DEFAULT_TEST_SIZE = 0.25

#: Every exported model takes one FP32 input ``[-1, n_features]`` of this name ...
INPUT_NAME = "input"
#: ... and returns these outputs (classifiers: label + probabilities; regressors: value).
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
VALUE_OUTPUT = "variable"
CLASSIFIER_OUTPUTS = (LABEL_OUTPUT, PROBABILITIES_OUTPUT)
REGRESSOR_OUTPUTS = (VALUE_OUTPUT,)

#: File names inside a model folder (a KFP Model artifact).
ONNX_FILENAME = "model.onnx"
MODEL_META_FILENAME = "model_meta.json"

#: The serving platform name every record and Triton config carries.
PLATFORM = "onnxruntime_onnx"

TASKS = ("classification", "regression")

#: The images (``Dockerfile``, built by ``scripts/image.sh``), tagged with the package
#: version: every pipeline task runs the first; the ServingRuntime runs the second (the
#: Open Inference Protocol server alone).
IMAGE_REPOSITORY = "ghcr.io/kfp-interop/kfp-interop"
SERVING_IMAGE_REPOSITORY = "ghcr.io/kfp-interop/kfp-interop-serving"
