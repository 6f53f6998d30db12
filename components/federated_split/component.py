"""federated_split: the simulation's data, split among the federation's clients."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_split(
    partitions: Output[Artifact],
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    dataset: str = "digits",
    target_column: str = "",
    clients: int = 4,
    partition: str = "dirichlet",
    alpha: float = 1.0,
    test_size: float = 0.25,
    seed: int = 42,
    source_fingerprint: str = "",
):
    """Split the training rows among `clients` (iid, or dirichlet label skew with
    concentration `alpha`), one file per client; the pooled training rows (for the
    centralized baseline) and the held-out test rows beside them.

    Args:
        dataset: a bundled classification data set, a CSV/Parquet file path, or an
            s3://bucket/key.csv URI.
        target_column: the label column of a file.
        clients: how many clients.
        partition: iid or dirichlet.
        alpha: Dirichlet concentration (dirichlet only; small: few classes per client).
        test_size: fraction of rows held out for evaluation.
        seed: seed of the split and the partition.
        source_fingerprint: fingerprint_data's output; the data set must still match it
            (so this cached task's key follows the file's content).
    """
    from kfp_interop.steps import federated_split_step

    manifest = federated_split_step(dataset=dataset, target_column=target_column,
                                    clients=clients, partition=partition, alpha=alpha,
                                    test_size=test_size, seed=seed,
                                    source_fingerprint=source_fingerprint,
                                    partitions_dir=partitions.path, train_path=train_data.path,
                                    test_path=test_data.path)
    partitions.metadata.update({"clients": manifest["clients"], "rows": manifest["rows"],
                                "partition": manifest["partition"]})
