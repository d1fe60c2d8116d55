"""Build the Keras twin of a scratch network: same layers, loss, optimizer and weights."""

from __future__ import annotations

import functools

import keras
import numpy as np

from scratch import MLP, Architecture, activations


def keras_activation(identifier):
    """Keras' activation for a scratch activation name or config."""
    config = activations.get(identifier).get_config()
    name = config.pop("name")
    fn = keras.activations.get(name)
    return functools.partial(fn, **config) if config else fn


def keras_optimizer(config: dict) -> keras.optimizers.Optimizer:
    """A Keras optimizer from a scratch optimizer's ``get_config()``.

    Keras 3 takes ``learning_rate=``; the old ``lr=`` is rejected.
    """
    config = dict(config)
    name = config.pop("name")
    classes = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
    if name not in classes:
        raise ValueError(f"No Keras twin for optimizer {name!r}; choose one of {sorted(classes)}.")
    return classes[name](**config)


# The cross-entropies of a softmax or sigmoid output, as Keras losses that take the logits.
# Given Dense(activation="softmax") and "categorical_crossentropy", Keras on TensorFlow
# reads the softmax's logits (keras/src/backend/tensorflow/nn.py, ``output._keras_logits``)
# while Keras on JAX and PyTorch clips the probabilities at epsilon() before the log
# (keras/src/backend/jax/nn.py): where the softmax saturates, their gradient is not S - y.
# A twin whose last Dense gives logits, and a loss that takes them, is the same maths on
# every backend; that is the form TensorFlow's own get-started example writes.
LOGIT_LOSSES = {("categorical_crossentropy", "softmax"): "CategoricalCrossentropy",
                ("sparse_categorical_crossentropy", "softmax"):
                    "SparseCategoricalCrossentropy",
                ("binary_crossentropy", "sigmoid"): "BinaryCrossentropy"}
FORMS = ("logits", "keras")  # the twin's own form; Keras' default form (a finding)


def build(arch: Architecture, optimizer: dict | None = None, dtype: str = "float32",
          dropout: float | None = None, form: str = "logits",
          weights: list[np.ndarray] | None = None, **compile_kwargs) -> keras.Sequential:
    """A compiled ``keras.Sequential`` of ``arch``: Dense layers with a Dropout after
    every hidden one when ``dropout`` (default ``arch.dropout``) is positive, starting
    from ``weights`` ([W1, b1, W2, b2, ...], scratch's layout and Keras'), or from Keras'
    own initializers. Given weights are the Dense layers' initializers, so that Keras draws
    no random numbers it would replace (on JAX, its random uniform costs a compilation of
    about 0.5 s for each kernel shape).

    ``form="logits"``: where the loss is the cross-entropy of the output activation, the
    last Dense is linear and the loss takes its logits (``from_logits=True``); the model
    then returns logits, and ``probabilities(model)`` applies the output activation.
    ``form="keras"``: Keras' default form, ``Dense(activation="softmax")`` and the loss by
    name, which trains another network off TensorFlow where the softmax saturates.
    """
    if form not in FORMS:
        raise ValueError(f"No twin form {form!r}; choose one of {FORMS}.")
    dropout = arch.dropout if dropout is None else dropout
    output = activations.get(arch.activations[-1]).name
    logits = LOGIT_LOSSES.get((arch.loss, output)) if form == "logits" else None
    last = len(arch.sizes) - 2
    if weights is not None and len(weights) != 2 * (last + 1):
        raise ValueError(f"{len(weights)} weights given for a twin of {last + 1} layers: "
                         f"it takes {2 * (last + 1)}, [W1, b1, W2, b2, ...].")
    layers: list = [keras.Input(shape=(arch.sizes[0],), dtype=dtype)]
    for i, (n_out, act) in enumerate(zip(arch.sizes[1:], arch.activations)):
        act = "linear" if logits and i == last else act
        given = {} if weights is None else {
            "kernel_initializer": _given(weights[2 * i], (arch.sizes[i], n_out)),
            "bias_initializer": _given(weights[2 * i + 1], (n_out,))}
        layers.append(keras.layers.Dense(n_out, activation=keras_activation(act), dtype=dtype,
                                         **given))
        if dropout and i < last:
            layers.append(keras.layers.Dropout(dropout, dtype=dtype))
    model = keras.Sequential(layers, name=f"{arch.name}_twin")
    model.output_activation = output if logits else None  # what probabilities() applies
    loss = getattr(keras.losses, logits)(from_logits=True, dtype=dtype) if logits else arch.loss
    # The optimizer's learning rate is a floatx variable: float32, Keras' default.
    keras.config.set_floatx("float32")
    model.compile(optimizer=keras_optimizer(optimizer or {"name": "sgd", "learning_rate": 0.01}),
                  loss=loss, **compile_kwargs)
    # fit and predict cast float inputs to floatx: a float64 model is fed float64 data.
    keras.config.set_floatx(dtype)
    return model


def _given(value: np.ndarray, shape: tuple[int, ...]):
    """An initializer that returns ``value``, which must have the layer's ``shape``."""
    if np.shape(value) != shape:
        raise ValueError(f"A weight of shape {np.shape(value)} given where the twin has "
                         f"{shape}.")
    return lambda shape, dtype=None: np.array(value, dtype=dtype)


def probabilities(model: keras.Model) -> keras.Model:
    """The model that gives ``model``'s outputs after its output activation: ``model``
    itself, or for a twin that returns logits, ``model`` then that activation (the same
    weights; TensorFlow's get-started example calls it the probability model)."""
    activation = getattr(model, "output_activation", None)
    if activation is None:
        return model
    output = keras.layers.Activation(keras_activation(activation), dtype=model.layers[-1].dtype)
    return keras.Model(model.inputs[0], output(model.outputs[0]),
                       name=f"{model.name}_probabilities")


def twin_of(mlp: MLP, form: str = "logits", **compile_kwargs) -> keras.Sequential:
    """The Keras twin of ``mlp`` (see ``build`` for ``form``), starting from a copy of its
    current weights."""
    config = mlp.get_config()
    arch = Architecture("twin", tuple(config["sizes"]), tuple(config["activations"]),
                        config["loss"], config["dropout"])
    return build(arch, config["optimizer"], config["dtype"], form=form,
                 weights=mlp.get_weights(), **compile_kwargs)


def gradients(model: keras.Model, x: np.ndarray, y: np.ndarray, training: bool = True
              ) -> tuple[float, list[np.ndarray]]:
    """The compiled loss and its gradients [dW1, db1, ...], by the backend's own autodiff
    (``tf.GradientTape``, ``jax.value_and_grad`` or ``torch.autograd``)."""
    loss_fn = keras.losses.get(model.loss)
    backend = keras.backend.backend()
    # The compiled loss reduces with "sum_over_batch_size": the mean over the batch.
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y, model(x, training=training)))
        grads = tape.gradient(loss, model.trainable_weights)
        return float(loss), [g.numpy() for g in grads]
    if backend == "jax":
        loss, grads = _jax_compiled(model, "value_and_grad", training)(
            *_values(model.trainable_variables, model.non_trainable_variables), x, y)
        return float(loss), [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        model.zero_grad()
        loss = torch.mean(loss_fn(torch.as_tensor(y), model(x, training=training)))
        loss.backward()
        return float(loss.detach()), [v.value.grad.cpu().numpy() for v in model.trainable_variables]
    raise ValueError(f"No gradients for Keras' {backend} backend.")


def train_step(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step from the autodiff's gradients, in the model's own dtype.

    ``model.train_on_batch`` would first cast float64 inputs to Keras' floatx
    (float32); this keeps a float64 twin in float64 end to end. On JAX the step is the
    optimizer's ``stateless_apply`` in one compiled call, as Keras' own JAX trainer runs it.
    """
    if keras.backend.backend() != "jax":
        loss, grads = gradients(model, x, y)
        model.optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads],
                              model.trainable_variables)
        return loss
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    variables = (model.trainable_variables, model.non_trainable_variables,
                 model.optimizer.variables)
    loss, trainable, state = _jax_compiled(model, "step")(*_values(*variables), x, y)
    for kept, new in ((variables[0], trainable), (variables[2], state)):
        for variable, value in zip(kept, new, strict=True):
            variable.assign(value)
    return float(loss)


def _values(*variables: list) -> list[list]:
    return [[v.value for v in group] for group in variables]


def _jax_compiled(model: keras.Model, kind: str, training: bool = True):
    """The model's loss and gradients (``kind="value_and_grad"``) or its optimizer step
    (``"step"``) as one jit-compiled function, compiled once a model and kept in its own
    ``__dict__`` (outside Keras' tracking): op by op, JAX would compile every operation."""
    import jax

    compiled = vars(model).setdefault("_groundup_jax", {})
    if (kind, training) in compiled:
        return compiled[kind, training]
    loss_fn = keras.losses.get(model.loss)

    def value(trainable, fixed, x, y):  # the compiled loss: the mean over the batch
        out, _ = model.stateless_call(trainable, fixed, x, training=training)
        return jax.numpy.mean(loss_fn(y, out))

    def step(trainable, fixed, state, x, y):
        loss, grads = jax.value_and_grad(value)(trainable, fixed, x, y)
        trainable, state = model.optimizer.stateless_apply(state, grads, trainable)
        return loss, trainable, state

    function = jax.value_and_grad(value) if kind == "value_and_grad" else step
    compiled[kind, training] = jax.jit(function)
    return compiled[kind, training]
