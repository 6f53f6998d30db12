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
    test_data: Input[Dataset] = None,
    mode: str = "graph",
    graph_level: str = "basic",
    max_accuracy_drop: float = 0.01,
    dynamic_batch: bool = False,
):
    """Optimize the model's ONNX graph (ONNX Runtime graph optimization; INT8 dynamic or
    static; FP16) and keep it only if it predicts as well as the graph it came from on
    the sample; the gate's numbers go to a Metrics artifact.

    Args:
        model: a model folder: export_onnx's (checked on test_data) or one with its
            record (adopt, attach_metadata; checked on its sample.npz).
        sample: inputs by name (.npz; an array 'labels' = the true labels), instead of
            test_data or the folder's sample.npz.
        test_data: held-out rows (a load_data split: its labels are the gate's truth).
        mode: none (the model passes through unchanged), graph, int8-dynamic,
            int8-static (calibrated on the sample) or fp16; all but none run the graph
            pass first.
        graph_level: none, basic (standard ONNX operators, portable) or extended
            (ONNX Runtime's fused operators).
        max_accuracy_drop: the most accuracy (or agreement) the optimized model may
            lose, a fraction (0.01 = one point); above it the task fails.
        dynamic_batch: first make a fixed batch size symbolic (checked against the
            original on the sample); with mode none, only that.
    """
    from kfp_interop.steps import optimize_step
    from kfp_interop.steps.artifacts import log_optimization

    record, report = optimize_step(model_path=model.path,
                                   sample_path=sample.path if sample else "",
                                   test_path=test_data.path if test_data else "",
                                   choice=mode, graph_level=graph_level,
                                   max_accuracy_drop=max_accuracy_drop,
                                   dynamic_batch=dynamic_batch, out_dir=optimized.path)
    log_optimization(optimized, gate, model_card.path, record, report,
                     source_metadata=dict(model.metadata))
