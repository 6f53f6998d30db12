"""The ``onnx-import`` reference pipeline: an ONNX file made elsewhere (any converter,
any framework) is imported from a URI or path, adopted (checked, run, described by the
record), optionally optimized, then stored, registered, deployed, smoke-tested on the
sample it ran and promoted, like a model kfp-interop trained."""

from kfp import dsl

from kfp_interop.components import adopt_onnx
from kfp_interop.pipelines.common import optimized, reference_pipeline, serve_model


@reference_pipeline(
    name="onnx-import",
    description="Import an ONNX file made elsewhere, check and describe it with the "
                "kfp-interop record, store, register, deploy, smoke-test and promote it.",
    without=("opset",),
)
def onnx_import(
    model_uri: str,
    task: str = "auto",
    labels: str = "",
    *,
    serving,
):
    """Adopt an ONNX file made elsewhere and take it to a smoke-tested endpoint.

    Args:
        model_uri: the ONNX file (s3://, gs://, minio://, https:// or a path the run can
            read), or a folder holding model.onnx.
        task: classification, regression, other, or auto (from the outputs).
        labels: class labels in output order, comma-separated (classification).
    """
    onnx_file = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model,
                             reimport=False)
    adopted = adopt_onnx(onnx_file=onnx_file.output, name=serving["model_name"],
                         version=serving["model_version"], task=task, labels=labels,
                         tolerance=serving["parity_tolerance"]).after(serving["check"])
    better = optimized(adopted.outputs["model"], serving)  # gated on adopt's sample
    serve_model(better.outputs["optimized"], None, serving)
