"""kfp-interop's KFP v2 components, one folder each (definition, compiled
``component.yaml``, README).

Example:
    >>> from kfp_interop.components import export_onnx, train

Each folder is a subpackage named like its component; after the imports below the
package attribute is the component itself (the folder's module stays importable as
``kfp_interop.components.<name>.component``).
"""

from kfp_interop.components.attach_metadata.component import attach_metadata
from kfp_interop.components.compare_transfer.component import compare_transfer
from kfp_interop.components.finetune.component import finetune
from kfp_interop.components.prepare_transfer_data.component import prepare_transfer_data
from kfp_interop.components.train_deep.component import train_deep
from kfp_interop.components.deploy.component import deploy
from kfp_interop.components.export_onnx.component import export_onnx
from kfp_interop.components.load_data.component import load_data
from kfp_interop.components.promote.component import promote
from kfp_interop.components.register_model.component import register_model
from kfp_interop.components.smoke_test.component import smoke_test
from kfp_interop.components.split_rows.component import split_rows
from kfp_interop.components.train.component import train
from kfp_interop.components.upload_model.component import upload_model
from kfp_interop.components.warm_start.component import warm_start

COMPONENTS = {c.component_spec.name.replace("-", "_"): c for c in
              (load_data, train, export_onnx, attach_metadata, upload_model, register_model,
               deploy, smoke_test, promote, train_deep, prepare_transfer_data, finetune,
               compare_transfer, split_rows, warm_start)}

__all__ = ["COMPONENTS", "load_data", "train", "export_onnx", "attach_metadata",
           "upload_model", "register_model", "deploy", "smoke_test", "promote", "train_deep",
           "prepare_transfer_data", "finetune", "compare_transfer", "split_rows", "warm_start"]
