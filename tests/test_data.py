import numpy as np
import pandas as pd
import pytest

from kfp_interop.data import BUNDLED_DATASETS, load_dataset, split_dataset
from kfp_interop.errors import DatasetError, InteropError, InvalidInputError, UnknownDatasetError


@pytest.mark.parametrize("name", sorted(BUNDLED_DATASETS))
def test_bundled_datasets_load_with_their_task(name):
    data = load_dataset(name)
    assert data.task == BUNDLED_DATASETS[name][0]
    assert data.X.shape[0] == len(data.y) > 100
    assert len(data.feature_names) == data.X.shape[1]
    if data.task == "classification":
        assert len(data.class_labels) == len(np.unique(data.y))


def test_split_is_seeded_and_stratified():
    data = load_dataset("iris")
    a_train, a_test = split_dataset(data, test_size=0.2, seed=7)
    b_train, b_test = split_dataset(data, test_size=0.2, seed=7)
    c_train, _ = split_dataset(data, test_size=0.2, seed=8)
    np.testing.assert_array_equal(a_train.X, b_train.X)
    assert not np.array_equal(a_train.X, c_train.X)
    assert np.bincount(a_test.y).tolist() == [10, 10, 10]


def test_fingerprint_is_stable_and_data_sensitive(tmp_path):
    assert load_dataset("wine").fingerprint() == load_dataset("wine").fingerprint()
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    df.to_csv(tmp_path / "d.csv", index=False)
    f1 = load_dataset(str(tmp_path / "d.csv"), target_column="y").fingerprint()
    df.loc[0, "a"] = 1.5
    df.to_csv(tmp_path / "d.csv", index=False)
    assert load_dataset(str(tmp_path / "d.csv"), target_column="y").fingerprint() != f1


def test_csv_and_parquet_with_string_target(tmp_path):
    df = pd.DataFrame({"x1": np.arange(20.0), "x2": np.arange(20) % 3,
                       "kind": ["cat", "dog"] * 10})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    for path in ("d.csv", "d.parquet"):
        data = load_dataset(str(tmp_path / path), target_column="kind")
        assert data.task == "classification"
        assert data.class_labels == ["cat", "dog"]
        assert data.feature_names == ["x1", "x2"]
        assert data.y.tolist()[:2] == [0, 1]


def test_float_target_with_many_values_is_regression(tmp_path):
    df = pd.DataFrame({"x": np.arange(50.0), "price": np.linspace(0, 1, 50) ** 2})
    df.to_csv(tmp_path / "r.csv", index=False)
    assert load_dataset(str(tmp_path / "r.csv"), target_column="price").task == "regression"


def test_missing_target_column_names_it_and_the_columns(tmp_path):
    pd.DataFrame({"a": [1, 2], "b": [0, 1]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DatasetError, match=r"'label' is not in .*\['a', 'b'\]"):
        load_dataset(str(tmp_path / "d.csv"), target_column="label")


def test_file_without_target_column_is_refused(tmp_path):
    pd.DataFrame({"a": [1, 2], "b": [0, 1]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DatasetError, match="target_column"):
        load_dataset(str(tmp_path / "d.csv"))


def test_text_columns_are_kept_as_text_and_refused_where_they_cannot_go(tmp_path):
    """A text feature is a category: kept (scikit-learn encodes it inside the ONNX graph);
    a framework that takes numbers only names the columns and says what to do."""
    from kfp_interop.training import train_model

    pd.DataFrame({"a": [1.0, 2.0] * 6, "color": ["red", "blue", None] * 4,
                  "y": [0, 1, 1] * 4}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DatasetError, match=r"'color': 4.*nan_policy='impute'"):
        load_dataset(str(tmp_path / "d.csv"), target_column="y")
    data = load_dataset(str(tmp_path / "d.csv"), target_column="y", nan_policy="impute")
    assert data.text_columns == ["color"] and list(data.X["color"][:3]) == ["red", "blue", ""]
    train, test = split_dataset(data, test_size=0.34)
    with pytest.raises(InvalidInputError, match=r"Text column\(s\) \['color'\].*"
                                                r"framework='sklearn'"):
        train_model(train, test, framework="lightgbm")
    assert train_model(train, test, framework="sklearn").metrics["accuracy"] >= 0


def test_nans_refused_by_default_with_counts(tmp_path):
    pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [np.nan, np.nan, 1.0],
                  "y": [0, 1, 0]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DatasetError, match=r"\{'a': 1, 'b': 2\}.*nan_policy='impute'"):
        load_dataset(str(tmp_path / "d.csv"), target_column="y")
    data = load_dataset(str(tmp_path / "d.csv"), target_column="y", nan_policy="impute")
    assert data.has_missing()


def test_missing_target_values_always_refused(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, np.nan, 1]}).to_csv(tmp_path / "d.csv",
                                                                      index=False)
    with pytest.raises(DatasetError, match="1 missing value"):
        load_dataset(str(tmp_path / "d.csv"), target_column="y", nan_policy="impute")


def test_empty_dataset_is_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("a,b,y\n")
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(str(tmp_path / "empty.csv"), target_column="y")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(str(tmp_path / "blank.csv"), target_column="y")


def test_unknown_dataset_lists_bundled_ones():
    with pytest.raises(UnknownDatasetError, match="iris") as info:
        load_dataset("irs")
    assert isinstance(info.value, InteropError) and isinstance(info.value, KeyError)


def test_unsupported_extension_and_bad_options(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DatasetError, match=".csv or .parquet"):
        load_dataset(str(tmp_path / "d.xlsx"), target_column="y")
    with pytest.raises(InvalidInputError, match="nan_policy"):
        load_dataset("iris", nan_policy="drop")
    with pytest.raises(InvalidInputError, match="regression"):
        load_dataset("iris", task="regression")


def test_class_with_one_row_cannot_be_split(tmp_path):
    pd.DataFrame({"a": np.arange(5.0), "y": [0, 0, 0, 0, 1]}).to_csv(tmp_path / "d.csv",
                                                                    index=False)
    data = load_dataset(str(tmp_path / "d.csv"), target_column="y")
    with pytest.raises(DatasetError, match="fewer than 2 rows"):
        split_dataset(data)
