"""The ``transfer-learning`` reference pipeline: pretrain a PyTorch backbone on a source
task, fine-tune it on a k-shot target task with the backbone frozen (optionally
unfrozen for a few more epochs), train the same architecture from scratch on the same
k-shot data as the baseline, compare both on the same target test rows; then export,
record (with lineage), store, register, deploy, smoke-test and promote the fine-tuned
model."""

from kfp_interop.components import (compare_transfer, finetune, prepare_transfer_data,
                                    train_deep)
from kfp_interop.pipelines.common import export_and_serve, heavy, reference_pipeline


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
    """
    data = prepare_transfer_data(dataset=dataset, source_classes=source_classes,
                                 target_classes=target_classes, k=k,
                                 target_shift=target_shift, shift_strength=shift_strength,
                                 seed=seed).after(serving["check"])
    base = heavy(train_deep(train_data=data.outputs["source_train"],
                            test_data=data.outputs["source_test"], framework="torch",
                            architecture=architecture, epochs=pretrain_epochs, lr=lr,
                            seed=seed))
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
