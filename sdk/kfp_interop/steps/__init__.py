"""The pipeline's stages as plain functions over files, one module per stage group.
Each KFP component in ``components/`` is one call to a function here plus reading and
writing its artifacts (:mod:`.artifacts`). Everything is testable without KFP.

* :mod:`.tabular` — load and split data, train a tabular model; :func:`run_tabular`;
* :mod:`.export` — ONNX export behind the parity gate, attach the record;
* :mod:`.deep` — train a network;
* :mod:`.transfer_learning` — k-shot transfer data, fine-tune, compare with scratch;
* :mod:`.warm_start` — split rows, continue a boosted model (capability ``warm_start``);
* :mod:`.federated` — split among clients, client rounds, aggregation, the baseline;
* :mod:`.federated_deployment` — the evaluation rows and a run on Flower's Deployment
  Engine (engine=deployment);
* :mod:`.adopt` — an ONNX file made elsewhere, checked and described;
* :mod:`.native_file` — a native model file made elsewhere, exported behind the gate;
* :mod:`.optimize` — graph optimization and quantization behind an accuracy gate;
* :mod:`.release` — store, register, deploy, smoke-test (with rollback), promote;
* :mod:`.model_dir` — the model folder contract (:class:`ModelMeta`, ``model_meta.json``);
* :mod:`.stage` — a failed stage leaves ``error.json`` beside its outputs.
"""

from kfp_interop.steps.adopt import adopt_onnx_step, import_metadata_step
from kfp_interop.steps.native_file import export_file_step
from kfp_interop.steps.optimize import optimize_step
from kfp_interop.steps.deep import train_deep_step
from kfp_interop.steps.export import attach_metadata_step, export_onnx_step
from kfp_interop.steps.model_dir import ModelMeta, read_model_meta, write_model_meta
from kfp_interop.steps.release import (check_settings_step, deploy_step,
                                       endpoint_smoke_test, promote_step, register_model_step,
                                       smoke_test_step, upload_model_step)
from kfp_interop.steps.tabular import fingerprint_data_step, load_data_step, run_tabular, train_step
from kfp_interop.steps.transfer_learning import (compare_transfer_step, finetune_step,
                                        import_backbone_step, parse_classes,
                                        prepare_transfer_data_step)
from kfp_interop.steps.warm_start import split_rows_step, warm_start_step

from kfp_interop.steps.federated import (federated_aggregate_step, federated_centralized_step, federated_client_step,
                                         federated_init_step, federated_split_step,
                                         federated_finalize_step)
from kfp_interop.steps.federated_deployment import federated_eval_step, federated_flower_step

__all__ = ["adopt_onnx_step", "import_metadata_step", "export_file_step", "optimize_step", "fingerprint_data_step",
           "load_data_step", "train_step", "run_tabular", "export_onnx_step",
           "attach_metadata_step", "train_deep_step", "prepare_transfer_data_step",
           "finetune_step", "compare_transfer_step", "import_backbone_step", "parse_classes", "split_rows_step",
           "warm_start_step", "check_settings_step", "upload_model_step", "register_model_step",
           "deploy_step", "smoke_test_step", "endpoint_smoke_test", "promote_step", "ModelMeta", "read_model_meta",
           "write_model_meta", "federated_split_step", "federated_init_step", "federated_client_step",
           "federated_aggregate_step", "federated_centralized_step", "federated_finalize_step",
           "federated_eval_step", "federated_flower_step"]
