"""adopt_onnx: an ONNX file made elsewhere, checked, run and described by the record."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def adopt_onnx(
    onnx_file: Input[Model],
    model: Output[Model],
    model_card: Output[Markdown],
    sample: Input[Dataset] = None,
    expected: Input[Dataset] = None,
    name: str = "",
    version: str = "1",
    task: str = "auto",
    labels: str = "",
    tolerance: float = 1e-4,
    dynamic_batch: bool = False,
):
    """Check the file (onnx.checker, self-contained, ONNX Runtime loads and runs it),
    describe it from its graph, and write it with the record, like a model of ours.

    Args:
        onnx_file: an ONNX file, or a folder holding model.onnx (e.g. from dsl.importer).
        sample: inputs to run, .npz by input name ('' = made from the declared shapes).
        expected: outputs the model should give on the sample, .npz by output name.
        name: serving name, a DNS-1123 label ('' = from the file name).
        version: a positive integer, as a string.
        task: auto, classification, regression or other.
        labels: class labels in output order, comma-separated (classification).
        tolerance: max difference from the expected float outputs.
        dynamic_batch: a graph with a fixed batch size gets a symbolic one, checked
            against the original on the sample (origin.dynamic_batch in the record).
    """
    from kfp_interop.files import atomic_write
    from kfp_interop.metadata.render import to_kfp_metadata, to_model_card
    from kfp_interop.steps import adopt_onnx_step

    record = adopt_onnx_step(model_path=onnx_file.path, name=name, version=version, task=task,
                        labels=labels, sample_path=sample.path if sample else "",
                        expected_path=expected.path if expected else "", tolerance=tolerance,
                        dynamic_batch=dynamic_batch, out_dir=model.path)
    model.metadata.update(to_kfp_metadata(record))
    atomic_write(model_card.path, to_model_card(record))
