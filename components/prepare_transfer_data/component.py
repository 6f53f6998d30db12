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
    source_classes: str = "0,1,2,3,4",
    target_classes: str = "5,6,7,8,9",
    k: int = 10,
    seed: int = 42,
):
    """Split the classes into a source task and a target task with only k training
    samples per class (the rest of the target split is the target test set).

    Args:
        dataset: a bundled classification data set.
        source_classes, target_classes: disjoint comma-separated class indices.
        k: target training samples per class.
        seed: split and sampling seed.
    """
    from kfp_interop.steps import prepare_transfer_data_step

    out = prepare_transfer_data_step(dataset=dataset, source_classes=source_classes,
                                     target_classes=target_classes, k=k, seed=seed,
                                     source_train=source_train.path,
                                     source_test=source_test.path,
                                     target_train=target_train.path,
                                     target_test=target_test.path)
    for art, part in ((source_train, "source"), (source_test, "source"),
                      (target_train, "target"), (target_test, "target")):
        art.metadata.update(out[part])
