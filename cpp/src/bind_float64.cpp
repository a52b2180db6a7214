// nncore._core's float64 classes: a translation unit of their own, so that the build compiles
// the two precisions' bindings in parallel.
#include "bindings.hpp"

void nncore_bind_float64(pybind11::module_& m) {
  bind_optimizer<double>(m, "Optimizer64");
  bind_csr<double>(m, "CsrMatrix64");
  bind_network<double>(m, "Network64");
}
