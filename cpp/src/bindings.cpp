// nncore._core: translation between Python and the C++ core, no maths.
// Hot-path arrays are taken with .noconvert() and c_style, so a wrong dtype or layout raises
// TypeError instead of being silently copied; the Python layer prepares arrays before calling.
// Shapes are checked here, before the GIL is released; every C++ computation runs without it.
#include "bindings.hpp"

namespace {

void bind_schedule(py::module_& m) {
  using nncore::Schedule;
  py::class_<Schedule>(m, "Schedule", "A per-epoch step-size schedule (see nncore.Schedule).")
      .def(py::init([](const std::string& kind, double learning_rate_init, double power_t,
                       Index n_iter_no_change, double tol, Index step_size, double gamma,
                       Index total_epochs, double min_learning_rate, Index warmup_epochs) {
             nncore::ScheduleConfig c;
             c.kind = parse(kSchedules, "schedule", kind);
             c.learning_rate_init = learning_rate_init;
             c.power_t = power_t;
             c.n_iter_no_change = n_iter_no_change;
             c.tol = tol;
             c.step_size = step_size;
             c.gamma = gamma;
             c.total_epochs = total_epochs;
             c.min_learning_rate = min_learning_rate;
             c.warmup_epochs = warmup_epochs;
             return Schedule(c);
           }),
           py::arg("kind"), py::arg("learning_rate_init"), py::arg("power_t") = kSchedule.power_t,
           py::arg("n_iter_no_change") = kSchedule.n_iter_no_change,
           py::arg("tol") = kSchedule.tol, py::arg("step_size") = kSchedule.step_size,
           py::arg("gamma") = kSchedule.gamma, py::arg("total_epochs") = kSchedule.total_epochs,
           py::arg("min_learning_rate") = kSchedule.min_learning_rate,
           py::arg("warmup_epochs") = kSchedule.warmup_epochs)
      .def_property_readonly("kind",
                             [](Schedule& s) { return name_of(kSchedules, s.config().kind); })
      .def_property_readonly("learning_rate", &Schedule::learning_rate)
      .def_property_readonly("epoch", &Schedule::epoch)
      .def_property_readonly("no_improvement_count", &Schedule::no_improvement_count)
      .def_property_readonly("best_loss", &Schedule::best_loss)
      .def_property_readonly("base_learning_rate", &Schedule::base_learning_rate)
      .def("set_state", &Schedule::set_state, py::arg("epoch"), py::arg("base_learning_rate"),
           py::arg("no_improvement_count"), py::arg("best_loss"))
      .def("epoch_end", &Schedule::epoch_end, py::arg("monitored_loss"), py::arg("samples_seen"),
           "advance one epoch; True when the adaptive schedule asks to stop");
}

}  // namespace

// The default thread count as C functions, for threadpoolctl (nncore/_threadpool.py registers a
// controller that finds this library by these symbols and calls them through ctypes).
#if defined(_WIN32)
#define NNCORE_EXPORT __declspec(dllexport)
#else
#define NNCORE_EXPORT __attribute__((visibility("default")))
#endif
extern "C" {
NNCORE_EXPORT int nncore_get_num_threads() {
  return nncore::threads::limit();
}
NNCORE_EXPORT void nncore_set_num_threads(int n) {
  nncore::threads::set_limit(n);
}
}

// One module per x86-64 level (NNCORE_MODULE is _core_baseline, _core_avx2 or _core_avx512;
// CMakeLists.txt), loaded by nncore/_core.py as nncore._core.
#ifndef NNCORE_MODULE
#define NNCORE_MODULE _core_baseline
#endif
#ifndef NNCORE_CPU_TARGET
#define NNCORE_CPU_TARGET "baseline"
#endif

PYBIND11_MODULE(NNCORE_MODULE, m) {
  // Before any class is bound: classes and functions take their __module__ from it, and
  // pickles must name nncore._core, whichever build wrote them.
  m.attr("__name__") = "nncore._core";
  m.doc() = "nncore's compiled core (Eigen kernels); use the nncore package, not this module.";
  m.attr("cpu_target") = NNCORE_CPU_TARGET;
  nncore_bind_float64(m);
  nncore_bind_float32(m);
  bind_schedule(m);
  m.attr("activations") = names(kActivations);
  m.attr("losses") = names(kLosses);
  m.attr("optimizers") = names(kOptimizers);
  m.attr("schedules") = names(kSchedules);
  m.attr("reductions") = names(kReductions);
  m.attr("param_kinds") = names(kParamKinds);
  // Constants of the maths that other forms of a model (the ONNX export) must repeat exactly.
  m.attr("batchnorm_epsilon") = nncore::kBatchNormEpsilon;
  m.attr("batchnorm_momentum") = nncore::kBatchNormMomentum;
  m.attr("leaky_relu_slope") = nncore::kLeakyReluSlope;
  // The defaults of the schedules and optimisers, for Python's signatures to read (as
  // scikit-learn's MLP has them; tests/test_parity_defaults.py holds them to it).
  py::dict defaults;
  defaults["power_t"] = kSchedule.power_t;
  defaults["n_iter_no_change"] = kSchedule.n_iter_no_change;
  defaults["tol"] = kSchedule.tol;
  defaults["step_size"] = kSchedule.step_size;
  defaults["gamma"] = kSchedule.gamma;
  defaults["total_epochs"] = kSchedule.total_epochs;
  defaults["min_learning_rate"] = kSchedule.min_learning_rate;
  defaults["warmup_epochs"] = kSchedule.warmup_epochs;
  defaults["beta_1"] = kOptimizer.beta1;
  defaults["beta_2"] = kOptimizer.beta2;
  defaults["epsilon"] = kOptimizer.epsilon;
  m.attr("defaults") = py::module_::import("types").attr("MappingProxyType")(defaults);
  m.def(
      "parameter_count",
      [](const std::vector<Index>& layer_sizes, bool batch_norm) {
        // The layout does not depend on the scalar type.
        return nncore::Network<double>::parameter_count(layer_sizes, batch_norm);
      },
      py::arg("layer_sizes"), py::arg("batch_norm") = false,
      "parameters of a network of these layer sizes (the slab's length), without building one");
  m.attr("march") = NNCORE_MARCH;
  m.def("thread_limit", &nncore::threads::limit,
        "the process-wide default thread count: OMP_NUM_THREADS at import, else the usable CPUs; "
        "threadpoolctl reads and sets it");
  m.def(
      "set_thread_limit",
      [](int n) {
        if (n < 1) throw std::invalid_argument("the thread limit must be >= 1, got " + std::to_string(n));
        nncore::threads::set_limit(n);
      },
      py::arg("n"));
  m.def("usable_cpus", &nncore::threads::usable_cpus, "CPUs this process may run on");
#ifdef NNCORE_GEMM
  m.attr("gemm_kernel") = nncore::gemm::kAvx512 ? "nncore-avx512" : "nncore-avx2";
#else
  m.attr("gemm_kernel") = "eigen";
#endif
  m.attr("eigen_version") = std::to_string(EIGEN_WORLD_VERSION) + "." +
                            std::to_string(EIGEN_MAJOR_VERSION) + "." +
                            std::to_string(EIGEN_MINOR_VERSION);
  m.def("seeded_permutation", &nncore::seeded_permutation, py::arg("n"), py::arg("seed"),
        "the row order train_epoch uses for shuffle=True and this seed");
  m.def(
      "dropout_mask",
      [](uint64_t seed, uint64_t step, Index layer, Index rows, Index units, double rate) {
        if (rows < 0 || units < 0 || layer < 0)
          throw std::invalid_argument("layer, rows and units must be >= 0");
        if (!(rate > 0.0 && rate < 1.0))
          throw std::invalid_argument("rate must be in (0, 1), got " + std::to_string(rate));
        Array<double> mask({rows, units});
        nncore::dropout_mask_rows<double>(
            nncore::MatrixMap<double>(mask.mutable_data(), rows, units), 0, rows,
            nncore::dropout_stream_key(seed, step, static_cast<uint64_t>(layer)), rate,
            nncore::dropout_scale<double>(rate));
        return mask;
      },
      py::arg("seed"), py::arg("step"), py::arg("layer"), py::arg("rows"), py::arg("units"),
      py::arg("rate"),
      "the dropout mask (rows, units), entries 0 or 1/(1-rate), that hidden layer `layer` of a "
      "training step with this seed and step counter multiplies into its first `rows` rows");
}
