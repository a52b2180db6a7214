// Elementwise activations g, each with its derivative beside it, fused with the dense layer's bias.
//
//   forward:   pre (B, D) holds inp·W on entry; adds the bias b (1, D) and writes act = g(pre).
//              pre keeps the biased pre-activation for the backward pass.
//   backward:  delta (B, D) holds ∂L/∂act on entry and ∂L/∂pre = ∂L/∂act ⊙ g'(pre) on exit.
// Derivatives read whichever saved buffer is cheaper: g' from act for relu/logistic/tanh (no
// transcendental recomputed), from pre for leaky_relu/softplus/gelu.
#pragma once

#include <cmath>

#include "tensor.hpp"

namespace nncore {

enum class Activation { identity, relu, logistic, tanh, leaky_relu, softplus, gelu };

// PyTorch's default negative slope.
constexpr double kLeakyReluSlope = 0.01;

// Numerically stable logistic: never evaluates exp of a large positive number.
template <class T>
T logistic_scalar(T p) {
  if (p >= T(0)) return T(1) / (T(1) + std::exp(-p));
  const T e = std::exp(p);
  return e / (T(1) + e);
}

// log(1 + e^p) without overflow for large p or loss of precision for very negative p.
template <class T>
T softplus_scalar(T p) {
  return std::max(p, T(0)) + std::log1p(std::exp(-std::abs(p)));
}

// GELU in its exact form p·Φ(p) (PyTorch's default, not the tanh approximation).
template <class T>
T gelu_scalar(T p) {
  return T(0.5) * p * (T(1) + std::erf(p * T(M_SQRT1_2)));
}
template <class T>
T gelu_derivative_scalar(T p) {
  const T cdf = T(0.5) * (T(1) + std::erf(p * T(M_SQRT1_2)));
  const T pdf = T(0.5 * M_2_SQRTPI * M_SQRT1_2) * std::exp(T(-0.5) * p * p);
  return cdf + p * pdf;
}

// pre (B, D) += b (1, D); act (B, D) = g(pre). For identity, act may alias pre.
template <class T>
void bias_activation_forward(MatrixMap<T> act, MatrixMap<T> pre, ConstRowVectorMap<T> b,
                             Activation g) {
  const Index B = pre.rows();
  // One row at a time, so the bias add and the activation touch the row while it is in cache.
  auto each_row = [&](auto&& g_of_row) {
    for (Index i = 0; i < B; ++i) {
      pre.row(i) += b;
      act.row(i) = g_of_row(pre.row(i).array());
    }
  };
  auto elementwise = [&](auto&& g_scalar) {
    each_row([&](const auto& p) { return p.unaryExpr(g_scalar); });
  };
  switch (g) {
    case Activation::identity:
      if (act.data() == pre.data()) {
        pre.rowwise() += b;
      } else {
        each_row([](const auto& p) { return p; });
      }
      break;
    case Activation::relu:
      each_row([](const auto& p) { return p.max(T(0)); });
      break;
    case Activation::logistic:
      elementwise([](T p) { return logistic_scalar(p); });
      break;
    case Activation::tanh:
      each_row([](const auto& p) { return p.tanh(); });
      break;
    case Activation::leaky_relu:
      elementwise([](T p) { return p > T(0) ? p : T(kLeakyReluSlope) * p; });
      break;
    case Activation::softplus:
      elementwise([](T p) { return softplus_scalar(p); });
      break;
    case Activation::gelu:
      elementwise([](T p) { return gelu_scalar(p); });
      break;
  }
}

// delta (B, D) ⊙= g'(pre) in place, with pre and act (B, D) as saved by the forward pass.
template <class T>
void activation_backward(MatrixMap<T> delta, ConstMatrixMap<T> pre, ConstMatrixMap<T> act,
                         Activation g) {
  auto d = delta.array();
  switch (g) {
    case Activation::identity:
      break;
    case Activation::relu:
      // g'(0) = 0, as scikit-learn's relu derivative.
      d = (act.array() > T(0)).select(d, T(0));
      break;
    case Activation::logistic:
      d *= act.array() * (T(1) - act.array());
      break;
    case Activation::tanh:
      d *= T(1) - act.array().square();
      break;
    case Activation::leaky_relu:
      d *= pre.array().unaryExpr([](T p) { return p > T(0) ? T(1) : T(kLeakyReluSlope); });
      break;
    case Activation::softplus:
      d *= pre.array().unaryExpr([](T p) { return logistic_scalar(p); });
      break;
    case Activation::gelu:
      d *= pre.array().unaryExpr([](T p) { return gelu_derivative_scalar(p); });
      break;
  }
}

}  // namespace nncore
