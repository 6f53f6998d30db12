"""fingerprint_data: what a data set's content is, so a cached load_data is only reused
for the same content."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def fingerprint_data(dataset: str, fingerprint: Output[Artifact]) -> str:
    """Return ``sha256:<hex>`` of a file's bytes, or ``bundled:<name>:scikit-learn-<v>``
    (also the artifact's metadata and content).

    Run it with caching off and pass its output to load_data's ``source_fingerprint``:
    KFP caches load_data by its parameters, and a file changed at the same path then
    changes them (the reference pipelines do this).

    Args:
        dataset: iris, wine, breast_cancer, digits, diabetes, or a .csv/.parquet path
            or s3://bucket/key URI (the object's bytes are fingerprinted).
    """
    from kfp_interop.steps import fingerprint_data_step

    value = fingerprint_data_step(dataset=dataset, out_path=fingerprint.path)
    fingerprint.metadata.update(dataset=dataset, fingerprint=value)
    return value
