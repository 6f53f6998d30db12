"""The ``onnx-import`` reference pipeline: an ONNX file made elsewhere (any converter,
any framework) is imported from a URI or path, adopted (checked, run, described by the
record), then stored, registered, deployed, smoke-tested on the sample it ran and
promoted, like a model kfp-interop trained."""

from kfp import dsl

from kfp_interop.components import adopt_onnx
from kfp_interop.pipelines.common import reference_pipeline, serve_model


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
    onnx_file = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model,
                             reimport=False)
    adopted = adopt_onnx(onnx_file=onnx_file.output, name=serving["model_name"],
                         version=serving["model_version"], task=task, labels=labels,
                         tolerance=serving["parity_tolerance"])
    serve_model(adopted.outputs["model"], None, serving)
