"""prepare_transfer_data: a source task and a k-shot target task from one data set."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def prepare_transfer_data(
    source_train: Output[Dataset],
    source_test: Output[Dataset],
    target_train: Output[Dataset],
    target_test: Output[Dataset],
    dataset: str = "digits",
    source_classes: str = "all",
    target_classes: str = "all",
    k: int = 5,
    target_shift: str = "noise",
    shift_strength: float = 0.3,
    seed: int = 42,
):
    """A source task and a target task with only k training samples per class (the rest
    of the target's rows are its test set): the same classes with the target half
    shifted (the default: Gaussian pixel noise, as from a new scanner), or other classes.

    Args:
        dataset: a bundled classification data set.
        source_classes: 'all', or comma-separated class indices of the source task.
        target_classes: 'all', or comma-separated class indices of the target task:
            equal to the source's (a shifted target) or disjoint (new classes).
        k: target training samples per class.
        target_shift: none, noise, blur or contrast (keeps shapes and labels).
        shift_strength: the shift's strength, 0 to 1 (noise: std over the value range).
        seed: split and sampling seed.
    """
    from kfp_interop.steps import prepare_transfer_data_step

    out = prepare_transfer_data_step(dataset=dataset, source_classes=source_classes,
                                     target_classes=target_classes, k=k,
                                     target_shift=target_shift,
                                     shift_strength=shift_strength, seed=seed,
                                     source_train=source_train.path,
                                     source_test=source_test.path,
                                     target_train=target_train.path,
                                     target_test=target_test.path)
    for art, part in ((source_train, "source"), (source_test, "source"),
                      (target_train, "target"), (target_test, "target")):
        art.metadata.update(out[part])
