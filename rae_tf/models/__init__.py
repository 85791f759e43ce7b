"""Models: one RegularizedAutoEncoder class, many registered recipes."""
from rae_tf.models.rae import RegularizedAutoEncoder
from rae_tf.models.zoo import MODELS, ModelRecipe, build_model, resolve_hparams
