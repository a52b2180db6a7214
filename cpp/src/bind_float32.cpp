// nncore._core's float32 classes: a translation unit of their own, so that the build compiles
// the two precisions' bindings in parallel.
#include "bindings.hpp"

void nncore_bind_float32(pybind11::module_& m) {
  bind_optimizer<float>(m, "Optimizer32");
  bind_csr<float>(m, "CsrMatrix32");
  bind_network<float>(m, "Network32");
}
