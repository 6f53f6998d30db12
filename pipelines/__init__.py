"""Reference pipelines: the registry (:mod:`.registry`), finding one by name or a
user's file (:mod:`.loading`), compiling (:mod:`.compiling`); one module per pipeline
beside them, sharing :mod:`.common`. Importing this package imports nothing heavy."""

from kfp_interop.pipelines.compiling import (IMAGE_ENV, SERVING_IMAGE_ENV, compile_all,
                                             compile_pipeline, image_reference)
from kfp_interop.pipelines.loading import load
from kfp_interop.pipelines.registry import (PIPELINES, ReferencePipeline, describe,
                                            graph_parameters, register_pipeline,
                                            split_graph_params)

__all__ = ["PIPELINES", "ReferencePipeline", "register_pipeline", "load", "describe",
           "compile_pipeline", "compile_all", "graph_parameters", "split_graph_params",
           "image_reference", "IMAGE_ENV", "SERVING_IMAGE_ENV"]
