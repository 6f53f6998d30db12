"""The ``transfer-learning`` reference pipeline: a PyTorch backbone, pretrained on a source
task in the run (or brought by you: compile with ``--param backbone=import``), is
fine-tuned on a k-shot target task; the same architecture trained from scratch on the
same k-shot rows is the baseline, both compared on the same target test rows; then the
fine-tuned model is exported, recorded (with lineage), stored, registered, deployed,
smoke-tested and promoted.

On its defaults the target is the other half of the digits under Gaussian pixel noise
(a new scanner): shapes and labels are the source's, so a pretrained backbone pays
(docs/transfer.md has the gain per k, and the old digits 0-4 -> 5-9 task, where it
does not).
"""

from kfp import dsl

from kfp_interop.components import (compare_transfer, finetune, import_backbone,
                                    prepare_transfer_data, train_deep)
from kfp_interop.pipelines.common import export_and_serve, heavy, reference_pipeline

#: parameters that shape the graph (compile-time): where the backbone comes from
GRAPH_PARAMETERS = {"backbone": "pretrain"}
BACKBONES = ("pretrain", "import")


def build(backbone: str = GRAPH_PARAMETERS["backbone"]):
    """The pipeline, pretraining its backbone (``pretrain``) or importing yours
    (``import``: the run takes ``base_model_uri``, ``base_architecture`` and
    ``base_init_args``).

    Raises:
        InvalidInputError: another backbone source.
    """
    from kfp_interop.errors import InvalidInputError

    if backbone not in BACKBONES:
        raise InvalidInputError(f"backbone={backbone!r}: use one of {list(BACKBONES)}.")
    imported = backbone == "import"

    @reference_pipeline(
        name="transfer-learning",
        description="Pretrain a CNN on one half of the digits, fine-tune it on k samples per "
                    "class of the other half under a sensor shift (pixel noise), compare with "
                    "the same network trained from scratch on those rows, export and serve.",
        defaults={"model_name": "digits-transfer"},
    )
    def transfer_learning(
        dataset: str = "digits",
        source_classes: str = "all",
        target_classes: str = "all",
        k: int = 5,
        target_shift: str = "noise",
        shift_strength: float = 0.3,
        architecture: str = "cnn",
        pretrain_epochs: int = 15,
        finetune_epochs: int = 60,
        finetune_lr: float = 0.001,
        unfreeze_epochs: int = 10,
        unfreeze_lr: float = 0.0001,
        scratch_epochs: int = 60,
        lr: float = 0.001,
        seed: int = 42,
        base_model_uri: str = "",
        base_architecture: str = "",
        base_init_args: str = "{}",
        *,
        serving,
    ):
        """Pretrain, fine-tune k-shot, compare with training from scratch, serve the result.

        Args:
            dataset: a classification data set split into a source and a target task.
            source_classes: classes of the source (pretraining) task: all, or indices
                comma-separated.
            target_classes: classes of the target task: the same as the source (a shifted
                target, the default) or disjoint ones (e.g. 0,1,2,3,4 to 5,6,7,8,9: new
                classes; on the digits that loses to scratch, docs/transfer.md).
            k: labelled rows per target class (k-shot).
            target_shift: how the target differs when the classes are the same: noise,
                blur, contrast or none (a shift that keeps shapes and labels).
            shift_strength: the shift's strength, 0 to 1 (noise: std over the value range).
            architecture: mlp or cnn (PyTorch).
            pretrain_epochs: epochs on the source task.
            finetune_epochs: fine-tuning epochs (same classes: every layer; new classes:
                the new head on the frozen backbone).
            finetune_lr: fine-tuning learning rate.
            unfreeze_epochs: new classes only: further epochs with every layer trainable.
            unfreeze_lr: learning rate of those epochs.
            scratch_epochs: epochs of the from-scratch baseline on the same k-shot rows.
            lr: learning rate of pretraining and of the baseline.
            seed: seed of the splits, initial weights and training order.
            base_model_uri: with a pipeline compiled with backbone=import: your
                pretrained PyTorch state dict or Keras .keras file (s3://, gs://,
                https:// or a path the run can read), instead of pretraining on the
                source task.
            base_architecture: a state dict's nn.Module as module:Class (allowed by
                KFP_INTEROP_ALLOWED_MODULES), with backbone and head submodules; or
                mlp/cnn; empty for a Keras file (backbone=import only).
            base_init_args: JSON constructor arguments of that class (backbone=import).
        """
        data = prepare_transfer_data(dataset=dataset, source_classes=source_classes,
                                     target_classes=target_classes, k=k,
                                     target_shift=target_shift, shift_strength=shift_strength,
                                     seed=seed).after(serving["check"])
        if imported:
            weights = dsl.importer(artifact_uri=base_model_uri, artifact_class=dsl.Model,
                                   reimport=False)
            base = import_backbone(backbone=weights.output,
                                   target_train=data.outputs["target_train"],
                                   architecture=base_architecture, init_args=base_init_args)
            base.set_display_name("your backbone")
        else:
            base = heavy(train_deep(train_data=data.outputs["source_train"],
                                    test_data=data.outputs["source_test"],
                                    framework="torch", architecture=architecture,
                                    epochs=pretrain_epochs, lr=lr, seed=seed))
            base.set_display_name("pretrain (source task)")
        tuned = heavy(finetune(base_model=base.outputs["model"],
                               train_data=data.outputs["target_train"],
                               test_data=data.outputs["target_test"], epochs=finetune_epochs,
                               unfreeze_epochs=unfreeze_epochs, lr=finetune_lr,
                               unfreeze_lr=unfreeze_lr, seed=seed))
        scratch = heavy(train_deep(train_data=data.outputs["target_train"],
                                   test_data=data.outputs["target_test"], framework="torch",
                                   architecture=architecture, epochs=scratch_epochs,
                                   batch_size=16, lr=lr, seed=seed))
        scratch.set_display_name("from scratch (target task)")
        compare_transfer(finetuned=tuned.outputs["model"], scratch=scratch.outputs["model"])
        export_and_serve(tuned, data.outputs["target_test"], serving)

    return transfer_learning


transfer_learning = build()
