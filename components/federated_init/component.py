"""federated_init: the global model of round 0."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_init(
    train_data: Input[Dataset],
    model: Output[Model],
    architecture: str = "mlp",
    init_args: str = "{}",
    seed: int = 42,
    strategy: str = "fedavg",
    strategy_options: str = "{}",
    dp_clip_norm: float = 0.0,
    dp_noise_multiplier: float = 0.0,
):
    """Seeded initial weights of the global model (arrays and their spec, no pickles).
    The aggregation's settings are checked here, before any client trains.

    Args:
        architecture: mlp, cnn or an allowed module:Class (PyTorch), or logistic
            (scikit-learn SGDClassifier, log loss).
        init_args: JSON constructor arguments of a module:Class.
        seed: seed of the initial weights.
        strategy: the aggregation strategy the rounds will use (checked).
        strategy_options: its JSON options (checked).
        dp_clip_norm: differential-privacy clipping norm (checked).
        dp_noise_multiplier: differential-privacy noise multiplier (checked).
    """
    from kfp_interop.steps import federated_init_step

    model.metadata.update(federated_init_step(train_path=train_data.path,
                                              architecture=architecture, init_args=init_args,
                                              seed=seed, strategy=strategy,
                                              strategy_options=strategy_options,
                                              dp_clip_norm=dp_clip_norm,
                                              dp_noise_multiplier=dp_noise_multiplier,
                                              out_dir=model.path))
