"""Tabular data: bundled data sets and the user's files (:mod:`.tabular`), seeded splits
and self-describing Parquet splits on disk (:mod:`.splits`)."""

from kfp_interop.data.sample import features_from_frame, read_sample, text_columns_of
from kfp_interop.data.splits import (SPLIT_METADATA_KEY, load_split, read_features,
                                     read_split_metadata, save_split, split_dataset,
                                     split_metadata)
from kfp_interop.data.tabular import (BUNDLED_DATASETS, NAN_POLICIES, TASKS, TabularData,
                                      load_dataset, model_inputs, source_fingerprint,
                                      check_source_fingerprint)

__all__ = ["BUNDLED_DATASETS", "NAN_POLICIES", "TASKS", "TabularData", "load_dataset",
           "source_fingerprint", "check_source_fingerprint", "model_inputs",
           "SPLIT_METADATA_KEY", "split_dataset", "save_split", "split_metadata", "load_split",
           "read_split_metadata", "read_features", "read_sample", "features_from_frame",
           "text_columns_of"]
