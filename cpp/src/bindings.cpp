// nncore._core: translation between Python and the C++ core, no maths.
// Hot-path arrays are taken with .noconvert() and c_style, so a wrong dtype or layout raises
// TypeError instead of being silently copied; the Python layer prepares arrays before calling.
// Shapes are checked here, before the GIL is released; every C++ computation runs without it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "nncore/network.hpp"
#include "nncore/trainer.hpp"

namespace py = pybind11;
using nncore::Activation;
using nncore::Index;
using nncore::Loss;
using nncore::Reduction;

namespace {

const std::vector<std::pair<std::string, Activation>> kActivations = {
    {"identity", Activation::identity}, {"relu", Activation::relu},
    {"logistic", Activation::logistic}, {"tanh", Activation::tanh},
    {"leaky_relu", Activation::leaky_relu}, {"softplus", Activation::softplus},
    {"gelu", Activation::gelu}};
const std::vector<std::pair<std::string, Loss>> kLosses = {{"squared_error", Loss::squared_error},
                                                           {"logistic", Loss::logistic},
                                                           {"softmax", Loss::softmax},
                                                           {"poisson", Loss::poisson}};
const std::vector<std::pair<std::string, Reduction>> kReductions = {{"mean", Reduction::mean},
                                                                    {"sum", Reduction::sum}};

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

template <class E>
std::string name_of(const std::vector<std::pair<std::string, E>>& table, E value) {
  for (const auto& [key, v] : table)
    if (v == value) return key;
  return "?";
}

template <class T>
using Array = py::array_t<T, py::array::c_style>;

// The network plus a flag that refuses concurrent use of one network from two Python threads
// (its workspace is shared state); separate networks run in parallel freely.
template <class T>
struct PyNetwork {
  nncore::Network<T> net;
  std::atomic<bool> busy{false};
};

template <class T>
class BusyGuard {
 public:
  explicit BusyGuard(PyNetwork<T>& self) : self_(self) {
    if (self_.busy.exchange(true))
      throw std::runtime_error("this network is already in use by another thread");
  }
  ~BusyGuard() { self_.busy.store(false); }

 private:
  PyNetwork<T>& self_;
};

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

template <class T>
const T* optional_weights(const std::optional<Array<T>>& w, Index n) {
  if (!w) return nullptr;
  if (w->ndim() != 1 || w->shape(0) != n)
    throw std::invalid_argument("sample_weight must have shape (" + std::to_string(n) + ",)");
  return w->data();
}

template <class T>
void bind_network(py::module_& m, const char* name) {
  using Self = PyNetwork<T>;
  py::class_<Self>(m, name, "An MLP over one contiguous parameter slab (see nncore.Network).")
      .def(py::init([](const std::vector<Index>& layer_sizes, const std::string& activation,
                       const std::string& loss, double alpha) {
             return new Self{nncore::Network<T>(layer_sizes,
                                                parse(kActivations, "activation", activation),
                                                parse(kLosses, "loss", loss), static_cast<T>(alpha))};
           }),
           py::arg("layer_sizes"), py::arg("activation"), py::arg("loss"), py::arg("alpha") = 0.0)
      .def_property_readonly("layer_sizes", [](Self& s) { return s.net.layer_sizes(); })
      .def_property_readonly("activation",
                             [](Self& s) { return name_of(kActivations, s.net.hidden_activation()); })
      .def_property_readonly("loss", [](Self& s) { return name_of(kLosses, s.net.loss()); })
      .def_property(
          "alpha", [](Self& s) { return static_cast<double>(s.net.alpha()); },
          [](Self& s, double a) { s.net.set_alpha(static_cast<T>(a)); })
      .def_property_readonly("n_params", [](Self& s) { return s.net.n_params(); })
      .def_property_readonly("capacity", [](Self& s) { return s.net.capacity(); })
      .def_property_readonly("workspace_allocations",
                             [](Self& s) { return s.net.workspace_allocations(); })
      .def_property_readonly("input_grad_counts",
                             [](Self& s) { return s.net.input_grad_counts(); })
      // Views into the slabs: writable, no copy; they keep the network alive.
      .def_property_readonly("params",
                             [](py::object self) {
                               Self& s = self.cast<Self&>();
                               return Array<T>({s.net.n_params()}, s.net.params(), self);
                             })
      .def_property_readonly("grads",
                             [](py::object self) {
                               Self& s = self.cast<Self&>();
                               return Array<T>({s.net.n_params()}, s.net.grads(), self);
                             })
      .def("layout",
           [](Self& s) {
             std::vector<std::tuple<Index, Index, Index>> out;
             for (Index i = 0; i < s.net.layout().count(); ++i) {
               const auto& e = s.net.layout()[i];
               out.emplace_back(e.offset, e.rows, e.cols);
             }
             return out;
           },
           "(offset, rows, cols) of W_0, b_0, W_1, b_1, ... in the parameter slab")
      .def("reserve",
           [](Self& s, Index rows) {
             if (rows < 1) throw std::invalid_argument("reserve needs rows >= 1");
             BusyGuard<T> guard(s);
             s.net.reserve(rows);
           })
      .def(
          "forward",
          [](Self& s, const Array<T>& X) {
            check_matrix(X, "X", -1, s.net.n_inputs());
            const Index n = X.shape(0);
            Array<T> out({n, s.net.n_outputs()});
            T* out_ptr = out.mutable_data();
            BusyGuard<T> guard(s);
            py::gil_scoped_release release;
            s.net.predict_scores(X.data(), n, out_ptr);
            return out;
          },
          py::arg("X").noconvert(), "raw output scores (n, K) for X (n, d)")
      .def(
          "weighted_loss_sum",
          [](Self& s, const Array<T>& X, const Array<T>& Y, const std::optional<Array<T>>& w) {
            check_matrix(X, "X", -1, s.net.n_inputs());
            const Index n = X.shape(0);
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            BusyGuard<T> guard(s);
            py::gil_scoped_release release;
            return s.net.weighted_loss_sum(X.data(), Y.data(), wp, n);
          },
          py::arg("X").noconvert(), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          "Σ_i w_i ℓ_i over all rows (no penalty)")
      .def("penalty", [](Self& s) { return s.net.penalty(); }, "α/2 Σ_t ‖W_t‖²")
      .def(
          "forward_backward",
          [](Self& s, const Array<T>& X, const Array<T>& Y, const std::optional<Array<T>>& w,
             double scale) {
            check_matrix(X, "X", -1, s.net.n_inputs());
            const Index n = X.shape(0);
            if (n < 1) throw std::invalid_argument("X must have at least one row");
            check_matrix(Y, "Y", n, s.net.n_outputs());
            const T* wp = optional_weights(w, n);
            BusyGuard<T> guard(s);
            py::gil_scoped_release release;
            s.net.reserve(n);
            return s.net.forward_backward(X.data(), Y.data(), wp, n, static_cast<T>(scale));
          },
          py::arg("X").noconvert(), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("scale"),
          "fills grads with ∂/∂θ scale·(Σ w ℓ + α/2 Σ‖W‖²) and returns Σ w ℓ + α/2 Σ‖W‖²")
      .def(
          "sgd_step",
          [](Self& s, double learning_rate) {
            BusyGuard<T> guard(s);
            s.net.sgd_step(static_cast<T>(learning_rate));
          },
          py::arg("learning_rate"))
      .def(
          "train_epoch",
          [](Self& s, const Array<T>& X, const Array<T>& Y, const std::optional<Array<T>>& w,
             const std::optional<Array<int64_t>>& order, Index batch_size, double learning_rate,
             const std::string& reduction, bool shuffle, uint64_t seed) {
            check_matrix(X, "X", -1, s.net.n_inputs());
            const Index n = X.shape(0);
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
            BusyGuard<T> guard(s);
            py::gil_scoped_release release;
            const auto r = nncore::train_epoch(s.net, X.data(), Y.data(), wp, n, order_ptr, m, opt);
            return std::make_tuple(r.mean_loss, r.steps, r.diverged);
          },
          py::arg("X").noconvert(), py::arg("Y").noconvert(), py::arg("sample_weight").noconvert(),
          py::arg("order").noconvert(), py::arg("batch_size"), py::arg("learning_rate"),
          py::arg("loss_reduction"), py::arg("shuffle"), py::arg("seed"),
          "one epoch of minibatch SGD; returns (mean loss, steps taken, diverged)");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nncore's compiled core (Eigen kernels); use the nncore package, not this module.";
  bind_network<double>(m, "Network64");
  bind_network<float>(m, "Network32");
  m.attr("march") = NNCORE_MARCH;
  m.attr("eigen_version") = std::to_string(EIGEN_WORLD_VERSION) + "." +
                            std::to_string(EIGEN_MAJOR_VERSION) + "." +
                            std::to_string(EIGEN_MINOR_VERSION);
  m.def("seeded_permutation", &nncore::seeded_permutation, py::arg("n"), py::arg("seed"),
        "the row order train_epoch uses for shuffle=True and this seed");
}
