"""split_rows: one split's rows in two (older and newer data, say)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def split_rows(
    data: Input[Dataset],
    first: Output[Dataset],
    second: Output[Dataset],
    fraction: float = 0.5,
    seed: int = 42,
):
    """Stratified, seeded: `fraction` of the rows go to `first`, the rest to `second`.

    Args:
        fraction: the share of rows that goes to `first`, between 0 and 1.
        seed: the split's seed.
    """
    from kfp_interop.steps import split_rows_step

    a, b = split_rows_step(data_path=data.path, fraction=fraction, seed=seed,
                           first_path=first.path, second_path=second.path)
    first.metadata.update(a)
    second.metadata.update(b)
