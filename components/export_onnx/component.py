"""export_onnx: native model -> ONNX, gated by parity against ONNX Runtime."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def export_onnx(
    model: Input[Model],
    test_data: Input[Dataset],
    onnx_model: Output[Model],
    parity: Output[Metrics],
    opset: int = 17,
    parity_tolerance: float = 1e-4,
    native_sha256: str = "",
    trusted_types: str = "",
):
    """Convert to ONNX (dynamic batch, plain tensors), then prove parity on held-out rows.

    The model comes from kfp-interop's training components, or from your own: a Model
    artifact holding the native file, whose metadata says framework, task,
    feature_names and class_labels (docs/model-artifact.md). test_data is a split from
    load_data or any CSV/Parquet file with the model's feature columns.

    The task fails (and writes no ONNX model) when the max difference of probabilities
    (regression: relative difference of values) exceeds parity_tolerance or any label
    differs.

    Args:
        opset: highest default-domain ONNX opset the model may use.
        parity_tolerance: the gate's tolerance.
        native_sha256: the training step's output: the native file must have this
            sha256 ('' = only the hash inside the model folder is checked).
        trusted_types: exact type names to trust in a scikit-learn file beyond the
            built-in list, comma-separated (see docs/security.md).
    """
    from kfp_interop.steps import export_onnx_step
    from kfp_interop.steps.artifacts import log_metrics

    meta = export_onnx_step(model_dir=model.path, test_path=test_data.path, opset=opset,
                       tolerance=parity_tolerance, native_sha256=native_sha256,
                       trusted_types=trusted_types, artifact_metadata=dict(model.metadata),
                       out_dir=onnx_model.path)
    onnx_model.metadata.update(meta.to_dict())
    log_metrics(parity, meta.parity)
