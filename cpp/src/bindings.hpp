// Shared by the translation units of nncore's bindings (bindings.cpp: the module; bind_float64.cpp
// and bind_float32.cpp: one precision's network, optimiser and sparse matrix each, compiled in
// parallel). Everything here has internal linkage: each unit instantiates what it binds.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "nncore/hvp.hpp"
#include "nncore/network.hpp"
#include "nncore/optim.hpp"
#include "nncore/schedule.hpp"
#include "nncore/shared_use.hpp"
#include "nncore/thread_pool.hpp"
#include "nncore/trainer.hpp"

namespace py = pybind11;
using nncore::Activation;
using nncore::Index;
using nncore::Loss;
using nncore::OptimizerKind;
using nncore::ParamKind;
using nncore::Prediction;
using nncore::Reduction;
using nncore::ScheduleKind;

namespace {

const std::vector<std::pair<std::string, Activation>> kActivations = {
    {"identity", Activation::identity},
    {"relu", Activation::relu},
    {"logistic", Activation::logistic},
    {"tanh", Activation::tanh},
    {"leaky_relu", Activation::leaky_relu},
    {"softplus", Activation::softplus},
    {"gelu", Activation::gelu}};
const std::vector<std::pair<std::string, Loss>> kLosses = {{"squared_error", Loss::squared_error},
                                                           {"logistic", Loss::logistic},
                                                           {"softmax", Loss::softmax},
                                                           {"poisson", Loss::poisson}};
const std::vector<std::pair<std::string, OptimizerKind>> kOptimizers = {
    {"sgd", OptimizerKind::sgd}, {"adam", OptimizerKind::adam}, {"adamw", OptimizerKind::adamw}};
const std::vector<std::pair<std::string, ScheduleKind>> kSchedules = {
    {"constant", ScheduleKind::constant},       {"invscaling", ScheduleKind::invscaling},
    {"adaptive", ScheduleKind::adaptive},       {"step", ScheduleKind::step},
    {"exponential", ScheduleKind::exponential}, {"cosine", ScheduleKind::cosine}};
const std::vector<std::pair<std::string, ParamKind>> kParamKinds = {
    {"weight", ParamKind::weight},
    {"bias", ParamKind::bias},
    {"bn_gamma", ParamKind::bn_gamma},
    {"bn_beta", ParamKind::bn_beta}};
const std::vector<std::pair<std::string, Prediction>> kPredictions = {
    {"scores", Prediction::scores},
    {"response", Prediction::response},
    {"proba", Prediction::proba},
    {"label", Prediction::label}};
const std::vector<std::pair<std::string, Reduction>> kReductions = {{"mean", Reduction::mean},
                                                                    {"sum", Reduction::sum}};

// Default settings, as the core's structs declare them: every signature reads them from here.
const nncore::ScheduleConfig kSchedule{};
const nncore::OptimizerConfig kOptimizer{};

template <class E>
E parse(const std::vector<std::pair<std::string, E>>& table, const std::string& what,
        const std::string& name) {
  std::string allowed;
  for (const auto& [key, value] : table) {
    if (key == name) return value;
    allowed += (allowed.empty() ? "'" : ", '") + key + "'";
  }
  throw std::invalid_argument(what + " must be one of " + allowed + ", got '" + name + "'");
}

// The names of a table, in order: what Python builds its choices and checks from.
template <class E>
py::tuple names(const std::vector<std::pair<std::string, E>>& table) {
  py::tuple out(table.size());
  for (size_t i = 0; i < table.size(); ++i) out[i] = table[i].first;
  return out;
}

template <class E>
std::string name_of(const std::vector<std::pair<std::string, E>>& table, E value) {
  for (const auto& [key, v] : table)
    if (v == value) return key;
  return "?";
}

template <class T>
using Array = py::array_t<T, py::array::c_style>;

// The network plus the lock that lets threads share it: evaluation (forward, weighted_loss_sum,
// penalty) takes it shared, everything that writes the network or its buffers takes it alone
// (shared_use.hpp). Every wait for it happens with the GIL released: a training epoch holds it
// and takes the GIL now and then (Ctrl-C), so waiting with the GIL held could deadlock.
template <class T>
struct PyNetwork {
  nncore::Network<T> net;
  nncore::HessianVectorProduct<T> hvp;  // its buffers, kept between products
  nncore::SharedUseLock lock;
};

// f() with the network to itself (f may not touch Python objects).
template <class T, class F>
auto alone(PyNetwork<T>& s, F&& f) {
  py::gil_scoped_release release;
  nncore::SoleUse use(s.lock);
  return f();
}
// f() beside other readers (f may not touch Python objects).
template <class T, class F>
auto shared(PyNetwork<T>& s, F&& f) {
  py::gil_scoped_release release;
  nncore::SharedUse use(s.lock);
  return f();
}

template <class T>
struct PyOptimizer {
  nncore::Optimizer<T> opt;
  std::atomic<bool> busy{false};
  static constexpr const char* what = "optimiser";
};

// Marks an object in use for the lifetime of the guard; a second user gets RuntimeError.
template <class Obj>
class BusyGuard {
 public:
  explicit BusyGuard(Obj& self) : self_(self) {
    if (self_.busy.exchange(true))
      throw std::runtime_error(std::string("this ") + Obj::what +
                               " is already in use by another thread");
  }
  ~BusyGuard() { self_.busy.store(false); }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;

 private:
  Obj& self_;
};

// A 1-D numpy view of n elements at data that keeps `owner` alive.
template <class T>
py::object view(py::object owner, T* data, Index n) {
  if (data == nullptr) return py::none();
  return Array<T>({n}, data, owner);
}

template <class T>
void check_matrix(const Array<T>& a, const char* name, Index rows, Index cols) {
  if (a.ndim() != 2 || (rows >= 0 && a.shape(0) != rows) || a.shape(1) != cols)
    throw std::invalid_argument(std::string(name) + " must have shape (" +
                                (rows >= 0 ? std::to_string(rows) : std::string("n")) + ", " +
                                std::to_string(cols) + "), got ndim=" + std::to_string(a.ndim()) +
                                (a.ndim() >= 2 ? " shape (" + std::to_string(a.shape(0)) + ", " +
                                                     std::to_string(a.shape(1)) + ")"
                                               : std::string()));
}

// A scipy CSR matrix's arrays as nncore.Network hands them over: data (nnz) in the network's
// dtype, indices (nnz) and indptr (n + 1) as int64, and the number of columns; checked once, here.
template <class T>
struct CsrArrays {
  Array<T> data;
  Array<int64_t> indices, indptr;
  Index cols;
  CsrArrays(Array<T> data_, Array<int64_t> indices_, Array<int64_t> indptr_, Index cols_)
      : data(std::move(data_)), indices(std::move(indices_)), indptr(std::move(indptr_)),
        cols(cols_) {
    if (data.ndim() != 1 || indices.ndim() != 1 || indptr.ndim() != 1 || indptr.shape(0) < 1 ||
        indices.shape(0) != data.shape(0) || cols < 1)
      throw std::invalid_argument(
          "a CSR matrix needs 1-D data and indices of one length, indptr of n + 1 >= 1 entries "
          "and at least one column");
    nncore::check_csr(view(), data.shape(0));
  }
  nncore::Csr<T> view() const {
    return {indptr.data(), indices.data(), data.data(), indptr.shape(0) - 1, cols};
  }
};

// X as the core takes it: a C-contiguous (n, d) array of the network's dtype, or a CsrArrays.
// Anything else is refused (a TypeError, as for a mismatched array argument): no silent copy.
template <class T>
struct InputArg {
  std::optional<Array<T>> dense;
  nncore::Csr<T> csr;
  bool sparse = false;
  Index rows = 0;
  InputArg(const py::object& X, Index d) {
    if (py::isinstance<CsrArrays<T>>(X)) {
      csr = X.cast<const CsrArrays<T>&>().view();
      sparse = true;
      rows = csr.rows;
      if (csr.cols != d)
        throw std::invalid_argument("X must have " + std::to_string(d) + " columns, got " +
                                    std::to_string(csr.cols));
      return;
    }
    if (!py::isinstance<Array<T>>(X))
      throw py::type_error(std::string("X must be a C-contiguous ") +
                           (sizeof(T) == 4 ? "float32" : "float64") +
                           " array or a CSR matrix of the network's dtype (nncore.Network."
                           "prepare converts), got " + std::string(py::str(py::type::of(X))));
    dense = py::reinterpret_borrow<Array<T>>(X);
    check_matrix(*dense, "X", -1, d);
    rows = dense->shape(0);
  }
  nncore::InputRows<T> input() const {
    return sparse ? nncore::InputRows<T>(csr, nullptr, 0) : nncore::InputRows<T>(dense->data());
  }
};

template <class T>
const T* optional_weights(const std::optional<Array<T>>& w, Index n) {
  if (!w) return nullptr;
  if (w->ndim() != 1 || w->shape(0) != n)
    throw std::invalid_argument("sample_weight must have shape (" + std::to_string(n) + ",)");
  return w->data();
}

template <class T>
void bind_optimizer(py::module_& m, const char* name) {
  using Self = PyOptimizer<T>;
  py::class_<Self>(m, name, "Optimiser state over one parameter slab (see nncore.optim).")
      .def(py::init([](const std::string& kind, Index n_params, double momentum, bool nesterov,
                       double beta_1, double beta_2, double epsilon, double weight_decay) {
             nncore::OptimizerConfig c;
             c.kind = parse(kOptimizers, "optimizer", kind);
             c.momentum = momentum;
             c.nesterov = nesterov;
             c.beta1 = beta_1;
             c.beta2 = beta_2;
             c.epsilon = epsilon;
             c.weight_decay = weight_decay;
             return new Self{nncore::Optimizer<T>(c, n_params)};
           }),
           py::arg("kind"), py::arg("n_params"), py::arg("momentum") = 0.0,
           py::arg("nesterov") = false, py::arg("beta_1") = kOptimizer.beta1,
           py::arg("beta_2") = kOptimizer.beta2, py::arg("epsilon") = kOptimizer.epsilon,
           py::arg("weight_decay") = kOptimizer.weight_decay)
      .def_property_readonly("kind",
                             [](Self& s) { return name_of(kOptimizers, s.opt.config().kind); })
      .def_property_readonly("n_params", [](Self& s) { return s.opt.n_params(); })
      .def_property(
          "steps", [](Self& s) { return s.opt.steps(); },
          [](Self& s, int64_t t) { s.opt.set_steps(t); }, "Adam's step count t")
      .def_property_readonly(
          "first",
          [](py::object self) {
            Self& s = self.cast<Self&>();
            return view<T>(self, s.opt.first(), s.opt.first_size());
          },
          "velocity (SGD with momentum) or first moment m (Adam), a view; None if stateless")
      .def_property_readonly(
          "second",
          [](py::object self) {
            Self& s = self.cast<Self&>();
            return view<T>(self, s.opt.second(), s.opt.second_size());
          },
          "second moment v (Adam), a view; None otherwise")
      .def("reset", [](Self& s) {
        BusyGuard<Self> guard(s);
        s.opt.reset();
      });
}

template <class T>
void bind_csr(py::module_& m, const char* name) {
  py::class_<CsrArrays<T>>(m, name,
                           "A CSR matrix's arrays (data, int64 indices, int64 indptr, columns), "
                           "checked once; what the Network methods take for sparse X.")
      .def(py::init<Array<T>, Array<int64_t>, Array<int64_t>, Index>(), py::arg("data").noconvert(),
           py::arg("indices").noconvert(), py::arg("indptr").noconvert(), py::arg("n_cols"))
      .def_property_readonly("shape", [](const CsrArrays<T>& c) {
        return std::make_tuple(c.indptr.shape(0) - 1, c.cols);
      });
}

template <class T>
void bind_network(py::module_& m, const char* name) {
  using Self = PyNetwork<T>;
  using Opt = PyOptimizer<T>;
  py::class_<Self>(m, name, "An MLP over one contiguous parameter slab (see nncore.Network).")
      .def(py::init([](const std::vector<Index>& layer_sizes, const std::string& activation,
                       const std::string& loss, double alpha, bool batch_norm) {
             return new Self{nncore::Network<T>(
                                 layer_sizes, parse(kActivations, "activation", activation),
                                 parse(kLosses, "loss", loss), static_cast<T>(alpha), batch_norm),
                             {}};
           }),
           py::arg("layer_sizes"), py::arg("activation"), py::arg("loss"), py::arg("alpha") = 0.0,
           py::arg("batch_norm") = false)
      .def_property_readonly("layer_sizes", [](Self& s) { return s.net.layer_sizes(); })
      .def_property_readonly(
          "activation", [](Self& s) { return name_of(kActivations, s.net.hidden_activation()); })
      .def_property_readonly("loss", [](Self& s) { return name_of(kLosses, s.net.loss()); })
      .def_property_readonly("batch_norm", [](Self& s) { return s.net.batch_norm(); })
      .def_property(
          "alpha", [](Self& s) { return static_cast<double>(s.net.alpha()); },
          [](Self& s, double a) { alone(s, [&] { s.net.set_alpha(static_cast<T>(a)); }); })
      .def_property(
          "loss_clip_epsilon", [](Self& s) { return s.net.loss_conventions().clip_epsilon; },
          [](Self& s, double eps) {
            if (!(eps >= 0.0 && eps < 0.5))
              throw std::invalid_argument("loss_clip_epsilon must be in [0, 0.5), got " +
                                          std::to_string(eps));
            alone(s, [&] {
              auto c = s.net.loss_conventions();
              c.clip_epsilon = eps;
              s.net.set_loss_conventions(c);
            });
          })
      .def_property(
          "sum_output_gradient",
          [](Self& s) { return s.net.loss_conventions().sum_output_gradient; },
          [](Self& s, bool on) {
            alone(s, [&] {
              auto c = s.net.loss_conventions();
              c.sum_output_gradient = on;
              s.net.set_loss_conventions(c);
            });
          })
      .def_property(
          "dropout", [](Self& s) { return s.net.dropout(); },
          [](Self& s, const std::vector<double>& rates) {
            alone(s, [&] { s.net.set_dropout(rates); });
          },
          "dropout rate of each hidden layer")
      .def_property(
          "dropout_seed", [](Self& s) { return s.net.dropout_seed(); },
          [](Self& s, uint64_t seed) { alone(s, [&] { s.net.set_dropout_seed(seed); }); },
          "seed of the dropout masks")
      .def_property(
          "dropout_step", [](Self& s) { return s.net.dropout_step(); },
          [](Self& s, uint64_t step) { alone(s, [&] { s.net.set_dropout_step(step); }); },
          "training steps that drew dropout masks: the counter of the next step's masks")
      .def_property_readonly("n_params", [](Self& s) { return s.net.n_params(); })
      .def_property_readonly("capacity", [](Self& s) { return s.net.capacity(); })
      .def_property_readonly("workspace_allocations",
                             [](Self& s) { return s.net.workspace_allocations(); })
      .def_property_readonly("input_grad_counts", [](Self& s) { return s.net.input_grad_counts(); })
      // Views into the slabs: writable, no copy; they keep the network alive.
      .def_property_readonly("params",
                             [](py::object self) {
                               Self& s = self.cast<Self&>();
                               return view<T>(self, s.net.params(), s.net.n_params());
                             })
      .def_property_readonly("grads",
                             [](py::object self) {
                               Self& s = self.cast<Self&>();
                               return view<T>(self, s.net.grads(), s.net.n_params());
                             })
      .def_property_readonly(
          "batchnorm_state",
          [](py::object self) {
            Self& s = self.cast<Self&>();
            if (s.net.batchnorm_state_size() == 0) return py::object(py::none());
            return view<T>(self, s.net.batchnorm_state(), s.net.batchnorm_state_size());
          },
          "running_mean_t, running_var_t of each batch-normalised layer")
      .def(
          "layout",
          [](Self& s) {
            std::vector<std::tuple<std::string, Index, Index, Index, Index>> out;
            for (Index i = 0; i < s.net.layout().count(); ++i) {
              const auto& e = s.net.layout()[i];
              const auto& [kind, layer] = s.net.entry_kinds()[static_cast<size_t>(i)];
              out.emplace_back(name_of(kParamKinds, kind), layer, e.offset, e.rows, e.cols);
            }
            return out;
          },
          "(kind, layer, offset, rows, cols) of every tensor in the parameter slab")
      .def_property(
          "n_threads", [](Self& s) { return s.net.threads(); },
          [](Self& s, int threads) { alone(s, [&] { s.net.set_threads(threads); }); },
          "threads a computation started now runs on; set a number, or 0 for the process-wide "
          "default (thread_limit())")
      .def_property_readonly(
          "n_threads_requested", [](Self& s) { return s.net.requested_threads(); },
          "the number set, or 0 for the process-wide default")
      .def(
          "use_reference_products",
          [](Self& s, bool reference) {
            alone(s, [&] { s.net.use_reference_products(reference); });
          },
          py::arg("reference"),
          "plain Eigen products instead of the preallocated GEMM path (for testing)")
      .def(
          "reserve",
          [](Self& s, Index rows) {
            if (rows < 1) throw std::invalid_argument("reserve needs rows >= 1");
            alone(s, [&] { s.net.reserve(rows); });
          },
          py::arg("rows"), "makes the training workspace hold `rows` rows (where training allocates)")
      .def(
          "forward",
          [](Self& s, const py::object& X_arg, bool training) {
            const InputArg<T> X(X_arg, s.net.n_inputs());
            const Index n = X.rows;
            Array<T> out({n, s.net.n_outputs()});
            T* out_ptr = out.mutable_data();
            shared(s, [&] { s.net.predict_scores(X.input(), n, out_ptr, training); });
            return out;
          },
          py::arg("X"), py::arg("training") = false,
          "raw output scores (n, K) for X (n, d)")
      .def(
          "predict",
          [](Self& s, const py::object& X_arg, const std::string& output,
             bool check_finite) -> py::object {
            const Prediction kind = parse(kPredictions, "output", output);
            const InputArg<T> X(X_arg, s.net.n_inputs());
            const Index n = X.rows;
            std::optional<Array<T>> values;
            std::optional<py::array_t<int64_t>> labels;
            if (kind == Prediction::label)
              labels.emplace(std::vector<py::ssize_t>{n});
            else
              values.emplace(std::vector<py::ssize_t>{n, s.net.prediction_width(kind)});
            T* value_ptr = values ? values->mutable_data() : nullptr;
            int64_t* label_ptr = labels ? labels->mutable_data() : nullptr;
            const bool finite = shared(s, [&] {
              return s.net.predict(X.input(), n, kind, value_ptr, label_ptr, check_finite);
            });
            if (!finite) return py::none();
            if (labels) return std::move(*labels);
            return std::move(*values);
          },
          py::arg("X"), py::arg("output") = "response", py::arg("check_finite") = false,
          "eval-mode predictions for X (n, d): output 'scores' (n, K), 'response' (n, K: the "
          "loss's inverse link), 'proba' (a classifier's probabilities: (n, 2) for one logistic "
          "output) or 'label' (n class indices); with check_finite, None when X holds a NaN or "
          "infinite value")
      .def(
          "weighted_loss_sum",
          [](Self& s, const py::object& X_arg, const Array<T>& Y, const std::optional<Array<T>>& w,
             bool training) {
            const InputArg<T> X(X_arg, s.net.n_inputs());
            const Index n = X.rows;
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            return shared(s, [&] { return s.net.weighted_loss_sum(X.input(), Y.data(), wp, n, training); });
          },
          py::arg("X"), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("training") = false, "Σ_i w_i ℓ_i over all rows (no penalty)")
      .def(
          "penalty", [](Self& s) { return shared(s, [&] { return s.net.penalty(); }); },
          "α/2 Σ_t ‖W_t‖²")
      .def(
          "forward_backward",
          [](Self& s, const py::object& X_arg, const Array<T>& Y, const std::optional<Array<T>>& w,
             double scale, bool update_running, bool dropout) {
            const InputArg<T> X(X_arg, s.net.n_inputs());
            const Index n = X.rows;
            if (n < 1) throw std::invalid_argument("X must have at least one row");
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            return alone(s, [&] {
              s.net.reserve(n, X.sparse);
              const double objective = s.net.forward_backward(X.input(), Y.data(), wp, n,
                                                              static_cast<T>(scale), dropout);
              if (update_running && std::isfinite(objective)) s.net.update_running_statistics(n);
              return objective;
            });
          },
          py::arg("X"), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("scale"), py::arg("update_running_stats") = false, py::arg("dropout") = false,
          "fills grads with ∂/∂θ scale·(Σ w ℓ + α/2 Σ‖W‖²) and returns Σ w ℓ + α/2 Σ‖W‖²; "
          "dropout: under the masks of the current dropout step, which then advances")
      .def(
          "hessian_vector_product",
          [](Self& s, const Array<T>& X, const Array<T>& Y, const std::optional<Array<T>>& w,
             double scale, const Array<T>& v, bool with_penalty, bool with_grad) {
            check_matrix(X, "X", -1, s.net.n_inputs());
            const Index n = X.shape(0);
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            if (v.ndim() != 1 || v.shape(0) != s.net.n_params())
              throw std::invalid_argument("v must have shape (" +
                                          std::to_string(s.net.n_params()) + ",)");
            Array<T> hv({s.net.n_params()});
            std::optional<Array<T>> grad;
            if (with_grad) grad.emplace(std::vector<py::ssize_t>{s.net.n_params()});
            T* hv_ptr = hv.mutable_data();
            T* grad_ptr = grad ? grad->mutable_data() : nullptr;
            const double objective = alone(s, [&] {
              return s.hvp.apply(s.net, X.data(), Y.data(), wp, n, static_cast<T>(scale),
                                 v.data(), hv_ptr, grad_ptr, with_penalty);
            });
            return std::make_tuple(objective, hv, grad);
          },
          py::arg("X").noconvert(), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("scale"), py::arg("v").noconvert(), py::arg("with_penalty") = true,
          py::arg("with_grad") = false,
          "(Σ w ℓ [+ α/2 Σ‖W‖²], H v, gradient or None) of scale·(Σ w ℓ [+ penalty]) over the "
          "rows as one batch (batch norm on their statistics); new arrays, the network unchanged")
      .def(
          "hessian_vector_products",
          [](Self& s, const Array<T>& X, const Array<T>& Y, const std::optional<Array<T>>& w,
             double scale, const Array<T>& V, bool with_penalty) {
            check_matrix(X, "X", -1, s.net.n_inputs());
            const Index n = X.shape(0);
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            check_matrix(V, "V", -1, s.net.n_params());
            const Index k = V.shape(0);
            Array<T> HV({k, s.net.n_params()});
            T* out = HV.mutable_data();
            const double objective = alone(s, [&] {
              return s.hvp.apply_many(s.net, X.data(), Y.data(), wp, n, static_cast<T>(scale),
                                      V.data(), out, k, with_penalty);
            });
            return std::make_tuple(objective, HV);
          },
          py::arg("X").noconvert(), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("scale"), py::arg("V").noconvert(), py::arg("with_penalty") = true,
          "(Σ w ℓ [+ penalty], H Vᵀ as rows) for the k rows of V (k, n_params): the pass at θ "
          "shared by all k products")
      .def(
          "set_batchnorm_statistics",
          [](Self& s, const py::object& X_arg) {
            const InputArg<T> X(X_arg, s.net.n_inputs());
            alone(s, [&] { s.net.set_batchnorm_statistics(X.input(), X.rows); });
          },
          py::arg("X"))
      .def(
          "optimizer_step",
          [](Self& s, Opt& o, double learning_rate) {
            if (o.opt.n_params() != s.net.n_params())
              throw std::invalid_argument("the optimiser was made for a different network");
            BusyGuard<Opt> opt_guard(o);
            return alone(s, [&] {
              return o.opt.step(s.net.params(), s.net.grads(), learning_rate,
                                s.net.params_backup());
            });
          },
          py::arg("optimizer"), py::arg("learning_rate"),
          "one optimiser update from the current grads; False if it made a parameter non-finite "
          "(then undone, with the optimiser's state reset)")
      .def(
          "train_epoch",
          [](Self& s, Opt& o, const py::object& X_arg, const Array<T>& Y,
             const std::optional<Array<T>>& w, const std::optional<Array<int64_t>>& order,
             Index batch_size, double learning_rate, const std::string& reduction, bool shuffle,
             uint64_t seed, bool continuing) {
            const InputArg<T> X(X_arg, s.net.n_inputs());
            const Index n = X.rows;
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            const int64_t* order_ptr = nullptr;
            Index m = 0;
            if (order) {
              if (order->ndim() != 1) throw std::invalid_argument("order must be 1-D");
              order_ptr = order->data();
              m = order->shape(0);
            }
            nncore::EpochOptions opt;
            opt.batch_size = batch_size;
            opt.learning_rate = learning_rate;
            opt.reduction = parse(kReductions, "loss_reduction", reduction);
            opt.shuffle = shuffle;
            opt.seed = seed;
            opt.continuing = continuing;
            // Ctrl-C: Python's handler only flags the signal; take the GIL briefly to let it
            // raise KeyboardInterrupt, and stop the epoch at the next step boundary.
            opt.should_stop = [] {
              py::gil_scoped_acquire acquire;
              return PyErr_CheckSignals() != 0;
            };
            BusyGuard<Opt> opt_guard(o);
            const nncore::EpochResult r = alone(s, [&] {
              return nncore::train_epoch(s.net, o.opt, X.sparse ? nullptr : X.dense->data(),
                                         X.sparse ? &X.csr : nullptr, Y.data(), wp, n, order_ptr,
                                         m, opt);
            });
            if (r.interrupted) throw py::error_already_set();
            return std::make_tuple(r.mean_loss, r.steps, r.diverged, r.mean_grad_norm,
                                   r.rolled_back);
          },
          py::arg("optimizer"), py::arg("X"), py::arg("Y").noconvert(),
          py::arg("sample_weight").noconvert(), py::arg("order").noconvert(), py::arg("batch_size"),
          py::arg("learning_rate"), py::arg("loss_reduction"), py::arg("shuffle"), py::arg("seed"),
          py::arg("continuing") = false,
          "one epoch of minibatch training; returns (mean loss, steps taken, diverged, mean "
          "gradient norm, rolled back)");
}

}  // namespace

// One precision's classes, defined in bind_float64.cpp and bind_float32.cpp.
void nncore_bind_float64(pybind11::module_& m);
void nncore_bind_float32(pybind11::module_& m);
