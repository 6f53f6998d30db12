"""The registry of reference pipelines. An entry is a :class:`ReferencePipeline`: where
its function lives and what it does; listing, describing and finding graph parameters
import nothing heavy, and :meth:`ReferencePipeline.load` imports the pipeline (and kfp)
only when asked.

Add a pipeline with one module in ``pipelines/`` (a body decorated with
:func:`~kfp_interop.pipelines.common.reference_pipeline`) and one
:func:`register_pipeline` call below (or an entry point in the group
``kfp_interop.pipelines``).
"""

from __future__ import annotations

import dataclasses
import importlib

from kfp_interop.registry import Registry

__all__ = ["PIPELINES", "ReferencePipeline", "register_pipeline", "describe",
           "graph_parameters", "split_graph_params"]


@dataclasses.dataclass(frozen=True)
class ReferencePipeline:
    """A registered pipeline: ``module`` and ``function`` of its ``@dsl.pipeline``
    function, a one-line ``description``."""

    name: str
    module: str
    function: str
    description: str

    def _module(self):
        return importlib.import_module(self.module)

    def load(self, graph: dict | None = None):
        """The pipeline function; with ``graph``, built again with those graph
        parameters (:func:`graph_parameters`).

        Raises:
            InvalidInputError: graph parameters the pipeline does not have.
        """
        from kfp_interop.errors import InvalidInputError

        module = self._module()
        if not graph:
            return getattr(module, self.function)
        known = getattr(module, "GRAPH_PARAMETERS", {})
        unknown = sorted(set(graph) - set(known))
        if unknown:
            raise InvalidInputError(f"Pipeline {self.name!r} has no graph parameter(s) "
                                    f"{unknown}" + (f"; it has {sorted(known)}." if known
                                                    else "."))
        return module.build(**{**known, **graph})

    def graph_parameters(self) -> dict:
        return dict(getattr(self._module(), "GRAPH_PARAMETERS", {}))


PIPELINES: Registry[ReferencePipeline] = Registry(
    "pipeline", "Reference pipelines live in pipelines/.",
    entry_point_group="kfp_interop.pipelines")


def register_pipeline(name: str, module: str, function: str, description: str) -> None:
    """Register a reference pipeline under ``name``."""
    PIPELINES.register(name, ReferencePipeline(name, module, function, description))


register_pipeline("tabular", "kfp_interop.pipelines.tabular", "tabular",
                  "scikit-learn/XGBoost/LightGBM -> ONNX (parity gate) -> metadata -> "
                  "store/register -> serve -> smoke test")
register_pipeline("deep", "kfp_interop.pipelines.deep", "deep",
                  "PyTorch/Keras MLP or CNN on digits -> ONNX (parity gate) -> metadata -> "
                  "serve -> smoke test")
register_pipeline("transfer-learning", "kfp_interop.pipelines.transfer_learning",
                  "transfer_learning",
                  "pretrain on one half of digits (or bring your backbone), fine-tune k-shot "
                  "on the other half under pixel noise vs from scratch -> ONNX -> serve")
register_pipeline("onnx-import", "kfp_interop.pipelines.onnx_import", "onnx_import",
                  "an ONNX file from any exporter -> checked, described (record) -> "
                  "store/register -> serve -> smoke test")
register_pipeline("federated-learning", "kfp_interop.pipelines.federated_learning",
                  "federated_learning",
                  "N clients x R rounds (ParallelFor + Flower aggregation) vs centralized -> "
                  "ONNX -> serve")
register_pipeline("warm-start", "kfp_interop.pipelines.warm_start", "warm_start_pipeline",
                  "XGBoost continued on newer rows vs newer rows only -> ONNX -> serve")


def describe(name: str) -> str:
    return PIPELINES.get(name).description


def graph_parameters(name: str) -> dict:
    """The parameters that shape a pipeline's graph, with their defaults (``{}`` for
    most, and for a user's file): set at compile time, e.g. ``--param rounds=10``."""
    return PIPELINES.get(name).graph_parameters() if name in PIPELINES else {}


def split_graph_params(name: str, pairs: list[str]) -> tuple[dict, list[str]]:
    """``KEY=VALUE`` pairs split into the graph parameters (typed like their defaults)
    and the rest (run-time parameters).

    Raises:
        InvalidInputError: a graph parameter of the wrong type.
    """
    from kfp_interop.errors import InvalidInputError

    known = graph_parameters(name)
    graph, rest = {}, []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if sep and key in known:
            kind = type(known[key])
            try:
                graph[key] = kind(value)
            except ValueError:
                raise InvalidInputError(f"--param {key}={value!r} is not a valid "
                                        f"{kind.__name__} (it shapes the pipeline's graph)."
                                        ) from None
        else:
            rest.append(pair)
    return graph, rest
