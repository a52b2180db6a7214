"""ONNX export of fitted `MLPClassifier` and `MLPRegressor` through skl2onnx (an optional extra:
``pip install 'nncore[onnx]'``).

    import nncore.onnx, skl2onnx
    nncore.onnx.register()                     # once per process; calling it again is harmless
    model = skl2onnx.to_onnx(estimator, X[:1].astype(np.float32))

The graph's dtype follows the sample handed to `to_onnx`: float32 in, a float32 graph; float64 in,
a float64 graph (the weights cast to it). Every activation exports to float32; 'gelu' has no
float64 graph, because onnxruntime has no float64 kernel for Erf (ValueError at conversion).
Classifiers give skl2onnx's two outputs, label and probabilities, and take its options
``zipmap`` (True, False, 'columns') and ``nocl``; multilabel labels are (n, n_labels) indicators.
ZipMap takes float32 only, so a float64 classifier graph needs ``zipmap`` False or 'columns'.
Regressors give one (n, n_outputs) output, exp of the scores for loss='poisson'. Batch
normalisation is folded into the dense layers with its running statistics (eval mode).
"""

from __future__ import annotations

import numpy as np

from . import _core

INSTALL = "pip install 'nncore[onnx]'"
CLASSIFIER_ALIAS = "NncoreMLPClassifier"
REGRESSOR_ALIAS = "NncoreMLPRegressor"

# Activations whose ONNX form needs an operator onnxruntime implements for float32 only.
_FLOAT32_ONLY = {"gelu": "Erf"}
# The output links the converters below build; a new one must not export silently as identity.
_OUTPUT_LINKS = ("identity", "exp", "logistic", "softmax")


def _skl2onnx():
    try:
        import onnx  # noqa: F401  (skl2onnx needs it; say so before skl2onnx fails obscurely)
        import skl2onnx
    except ImportError:
        raise ImportError(f"ONNX export needs skl2onnx and onnx: {INSTALL}") from None
    return skl2onnx


def register() -> None:
    """Teach skl2onnx to convert nncore's fitted estimators (`skl2onnx.to_onnx`,
    `convert_sklearn`, inside Pipelines too). Re-registering replaces the same entries."""
    skl2onnx = _skl2onnx()
    from .estimators import MLPClassifier, MLPRegressor

    # Declaring 'zipmap' also makes skl2onnx parse the classifier with its own classifier
    # parser, which adds the ZipMap stage the options ask for after our label + probabilities.
    skl2onnx.update_registered_converter(
        MLPClassifier, CLASSIFIER_ALIAS, _classifier_shapes, _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    skl2onnx.update_registered_converter(
        MLPRegressor, REGRESSOR_ALIAS, _regressor_shapes, _convert_regressor)


# ---- shapes --------------------------------------------------------------------------------
def _graph_dtype(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if len(operator.inputs) != 1:
        raise ValueError(f"an nncore estimator takes one input tensor, got {len(operator.inputs)}")
    input_type = operator.inputs[0].type
    if isinstance(input_type, DoubleTensorType):
        return np.float64
    if isinstance(input_type, FloatTensorType):
        return np.float32
    # nncore predicts on floating-point features only; an integer graph input would need a
    # silent cast whose dtype the user did not choose.
    raise TypeError(f"nncore's ONNX export takes float32 or float64 input, got "
                    f"{type(input_type).__name__}: pass X[:1].astype(np.float32) (or float64)")


def _tensor_type(dtype):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    return DoubleTensorType if dtype == np.float64 else FloatTensorType


def _check_exportable(estimator, dtype) -> None:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    network = estimator.network_
    if estimator.out_activation_ not in _OUTPUT_LINKS:
        raise ValueError(f"out_activation_={estimator.out_activation_!r} has no ONNX export "
                         f"(known: {', '.join(_OUTPUT_LINKS)})")
    activation = network.activation
    has_hidden = len(network.layer_sizes) > 2  # without hidden layers g is never applied
    if dtype == np.float64 and activation in _FLOAT32_ONLY and has_hidden:
        raise ValueError(
            f"activation={activation!r} cannot be exported as a float64 graph: it needs ONNX's "
            f"{_FLOAT32_ONLY[activation]} operator, which onnxruntime implements for float32 "
            f"only; convert with a float32 sample, X[:1].astype(np.float32)")


def _is_multilabel(estimator) -> bool:
    # Binary targets have one logistic output; several logistic outputs are independent labels.
    return estimator.out_activation_ == "logistic" and estimator.n_outputs_ > 1


def _class_labels(estimator, nocl: bool) -> np.ndarray:
    """classes_ as ONNX can carry them: int64, or an object array of str."""
    classes = np.asarray(estimator.classes_)
    if nocl or _is_multilabel(estimator):
        return np.arange(len(classes), dtype=np.int64)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        # ONNX labels and ZipMap keys are int64 or strings: integral floats keep their value.
        if np.all(classes == np.round(classes)):
            return classes.astype(np.int64)
        raise ValueError(f"class labels {classes.tolist()} are floats that are not integers; "
                         f"ONNX labels are int64 or strings: refit with integer or string labels, "
                         f"or export with options={{'nocl': True}} (labels as class indices)")
    if all(isinstance(c, str) for c in classes):
        return classes.astype(object)
    raise ValueError(f"class labels must be all integers or all strings to become ONNX labels, "
                     f"got {classes.tolist()!r}")


def _options(operator) -> dict:
    return operator.scope_inst.get_options(operator.raw_operator,
                                           dict(zipmap=True, nocl=False))


def _classifier_shapes(operator) -> None:
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    estimator = operator.raw_operator
    dtype = _graph_dtype(operator)
    _check_exportable(estimator, dtype)
    options = _options(operator)
    if dtype == np.float64 and options["zipmap"] is True:
        raise ValueError(
            "ONNX's ZipMap operator takes float32 probabilities only: export a float64 graph "
            "with options={'zipmap': False} (probabilities as a float64 tensor) or "
            "{'zipmap': 'columns'}, or convert with a float32 sample")
    if len(operator.outputs) != 2:
        raise RuntimeError(f"the classifier converter makes 2 outputs (label, probabilities), "
                           f"skl2onnx's parser asked for {len(operator.outputs)}")
    n = operator.inputs[0].get_first_dimension()
    labels = _class_labels(estimator, options["nocl"])
    label_type = StringTensorType if labels.dtype == object else Int64TensorType
    label_shape = [n, len(labels)] if _is_multilabel(estimator) else [n]
    operator.outputs[0].type = label_type(shape=label_shape)
    operator.outputs[1].type = _tensor_type(dtype)(shape=[n, len(labels)])


def _regressor_shapes(operator) -> None:
    estimator = operator.raw_operator
    dtype = _graph_dtype(operator)
    _check_exportable(estimator, dtype)
    if len(operator.outputs) != 1:
        raise RuntimeError(f"the regressor converter makes 1 output, skl2onnx's parser asked "
                           f"for {len(operator.outputs)}")
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _tensor_type(dtype)(shape=[n, estimator.n_outputs_])


# ---- graph ---------------------------------------------------------------------------------
class _Graph:
    """Nodes and constants appended to skl2onnx's container, names made unique by its scope."""

    def __init__(self, scope, container, dtype):
        self.scope, self.container, self.dtype = scope, container, dtype

    def constant(self, seed: str, value) -> str:
        from onnx import TensorProto, numpy_helper

        name = self.scope.get_unique_variable_name(seed)
        value = np.asarray(value)
        if value.dtype == object:  # string labels: numpy_helper wants bytes for STRING tensors
            self.container.add_initializer(name, TensorProto.STRING, list(value.shape),
                                           [str(v).encode("utf-8") for v in value.ravel()])
        else:
            tensor = numpy_helper.from_array(np.ascontiguousarray(value))
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def scalar(self, seed: str, value: float) -> str:
        # In the graph's dtype, so that e.g. 0.01 is the same number nncore's T(0.01) is.
        return self.constant(seed, np.asarray(value, dtype=self.dtype))

    def node(self, op: str, inputs, output: str | None = None, **attrs) -> str:
        output = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(op, list(inputs), output,
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return output


def _activation(graph: _Graph, x: str, activation: str) -> str:
    """g(x) from operators onnxruntime runs in float32 and float64 (gelu: float32 only)."""
    if activation == "identity":
        return x
    if activation == "relu":
        return graph.node("Relu", [x])
    if activation == "logistic":
        return graph.node("Sigmoid", [x])
    if activation == "tanh":
        return graph.node("Tanh", [x])
    if activation == "leaky_relu":
        # max(x, 0.01 x) equals the core's x > 0 ? x : 0.01 x exactly; ONNX's LeakyRelu keeps
        # its slope as a float32 attribute, which is not 0.01 in a float64 graph.
        scaled = graph.node("Mul", [x, graph.scalar("leaky_slope", _core.leaky_relu_slope)])
        return graph.node("Max", [x, scaled])
    if activation == "softplus":
        # The core's stable form max(x, 0) + log(1 + e^−|x|); ONNX's Softplus has no float64
        # kernel in onnxruntime. ONNX has no log1p: log(1 + u) for tiny u errs by about one
        # unit roundoff in absolute terms, below the tolerance of either dtype.
        u = graph.node("Exp", [graph.node("Neg", [graph.node("Abs", [x])])])
        log_term = graph.node("Log", [graph.node("Add", [u, graph.scalar("one", 1.0)])])
        return graph.node("Add", [graph.node("Relu", [x]), log_term])
    if activation == "gelu":
        # The core's exact form ½ x (1 + erf(x/√2)), not the tanh approximation.
        erf = graph.node("Erf", [graph.node("Mul", [x, graph.scalar("rsqrt2", np.sqrt(0.5))])])
        one_plus = graph.node("Add", [erf, graph.scalar("one", 1.0)])
        half_x = graph.node("Mul", [x, graph.scalar("half", 0.5)])
        return graph.node("Mul", [half_x, one_plus])
    raise ValueError(f"activation={activation!r} has no ONNX export")


def _dense_layers(network):
    """(W, b) per layer in float64, batch norm folded in. Eval-mode batch norm is affine per
    feature, γ (z − μ)/√(σ² + ε) + β with the running μ, σ², so it folds into the dense layer
    before it: W' = W·diag(s), b' = (b − μ) s + β with s = γ/√(σ² + ε) — no extra operators, and
    the fold is done in float64 before the cast to the graph's dtype."""
    layers = []
    n_hidden = len(network.layer_sizes) - 2
    for t, (W, b) in enumerate(zip(network.coefs, network.intercepts)):
        W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if network.batch_norm and t < n_hidden:
            gamma, beta, mean, var = (np.asarray(v[t], dtype=np.float64) for v in (
                network.bn_gammas, network.bn_betas, network.running_means,
                network.running_vars))
            s = gamma / np.sqrt(var + _core.batchnorm_epsilon)
            W, b = W * s, (b - mean) * s + beta
        layers.append((W, b))
    return layers


def _scores(graph: _Graph, x: str, estimator) -> str:
    """The raw output scores f (n, n_outputs): the hidden layers with their activation, then the
    linear output layer. P = A·W + b with W (fan_in, fan_out), as Gemm computes it."""
    network = estimator.network_
    layers = _dense_layers(network)
    for t, (W, b) in enumerate(layers):
        x = graph.node("Gemm", [x, graph.constant(f"coef{t}", W.astype(graph.dtype)),
                                graph.constant(f"intercept{t}", b.astype(graph.dtype))])
        if t < len(layers) - 1:
            x = _activation(graph, x, network.activation)
    return x


def _convert_classifier(scope, operator, container) -> None:
    from onnx import TensorProto

    estimator = operator.raw_operator
    dtype = _graph_dtype(operator)
    graph = _Graph(scope, container, dtype)
    f = _scores(graph, operator.inputs[0].full_name, estimator)
    label_out, proba_out = operator.outputs[0].full_name, operator.outputs[1].full_name
    if _is_multilabel(estimator):
        p = graph.node("Sigmoid", [f], proba_out)
        # predict thresholds with p > 0.5, strictly (LabelBinarizer.inverse_transform).
        positive = graph.node("Greater", [p, graph.scalar("half", 0.5)])
        graph.node("Cast", [positive], label_out, to=TensorProto.INT64)
        return
    if estimator.n_outputs_ == 1:
        # One logit: probabilities [1 − p, p], as predict_proba stacks them.
        p = graph.node("Sigmoid", [f])
        q = graph.node("Sub", [graph.scalar("one", 1.0), p])
        probabilities = graph.node("Concat", [q, p], proba_out, axis=1)
    else:
        probabilities = graph.node("Softmax", [f], proba_out, axis=1)
    # The first maximum, as numpy's argmax in predict: for binary, class 1 exactly when p > 0.5.
    index = graph.node("ArgMax", [probabilities], axis=1, keepdims=0)
    labels = _class_labels(estimator, _options(operator)["nocl"])
    graph.node("Gather", [graph.constant("classes", labels), index], label_out, axis=0)


def _convert_regressor(scope, operator, container) -> None:
    estimator = operator.raw_operator
    graph = _Graph(scope, container, _graph_dtype(operator))
    f = _scores(graph, operator.inputs[0].full_name, estimator)
    output = operator.outputs[0].full_name
    if estimator.out_activation_ == "exp":  # loss='poisson': log link
        graph.node("Exp", [f], output)
    else:
        graph.node("Identity", [f], output)
