"""optimize: graph optimization and quantization behind an accuracy gate."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def optimize(
    model: Input[Model],
    optimized: Output[Model],
    gate: Output[Metrics],
    model_card: Output[Markdown],
    sample: Input[Dataset] = None,
    graph_level: str = "basic",
    quantize: str = "none",
    max_accuracy_drop: float = 0.01,
):
    """Optimize the model's ONNX graph (ONNX Runtime graph optimization; INT8 dynamic or
    static; FP16) and keep it only if it predicts as well as the graph it came from on
    the sample; the gate's numbers go to a Metrics artifact.

    Args:
        model: a model folder with model.onnx and its record (export, adopt).
        sample: inputs by name (.npz; an array 'labels' = the true labels); default:
            the sample.npz in the model folder.
        graph_level: none, basic (standard ONNX operators, portable) or extended
            (ONNX Runtime's fused operators).
        quantize: none, int8-dynamic, int8-static (calibrated on the sample) or fp16.
        max_accuracy_drop: the most accuracy (or agreement) the optimized model may
            lose, a fraction (0.01 = one point); above it the task fails.
    """
    from kfp_interop.files import atomic_write
    from kfp_interop.metadata.render import to_kfp_metadata, to_model_card
    from kfp_interop.steps import optimize_step

    record, report = optimize_step(model_path=model.path,
                                   sample_path=sample.path if sample else "",
                                   graph_level=graph_level, quantize=quantize,
                                   max_accuracy_drop=max_accuracy_drop,
                                   out_dir=optimized.path)
    optimized.metadata.update(to_kfp_metadata(record))
    accuracy = report["accuracy"]
    gate.log_metric(f"{accuracy['metric']}_after", float(accuracy["after"]))
    if accuracy.get("before") is not None:
        gate.log_metric(f"{accuracy['metric']}_before", float(accuracy["before"]))
    gate.log_metric("accuracy_drop", float(accuracy["drop"]))
    gate.log_metric("max_accuracy_drop", float(accuracy["max_drop"]))
    gate.log_metric("size_ratio", report["size_bytes"]["before"]
                    / max(1, report["size_bytes"]["after"]))
    atomic_write(model_card.path, to_model_card(record))
