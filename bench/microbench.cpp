// Microbenchmarks of the core's pieces for the four performance workloads (float32), each next
// to the raw Eigen GEMM of the same shapes (dense_forward = X·W; dense_backward = Xᵀ·G + G·Wᵀ
// + a column sum), so a regression shows where it is. Eigen here runs its own float kernel,
// the core nncore's (gemm.hpp) where built with AVX2+FMA.
//
//   cmake -S . -B build/bench -DNNCORE_BENCH=ON && cmake --build build/bench --target microbench
//   build/bench/microbench [threads]
//
// Prints the median over repeats, in microseconds, per kernel and workload.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "nncore/network.hpp"
#include "nncore/optim.hpp"
#include "nncore/trainer.hpp"

using namespace nncore;
using Clock = std::chrono::steady_clock;

namespace {

double median_us(const std::function<void()>& f, int repeats) {
  f();  // warm-up
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

struct Workload {
  const char* name;
  Index n, d, h, batch;
};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const Workload workloads[] = {{"tiny", 8192, 16, 32, 32},
                                {"small", 16384, 64, 128, 64},
                                {"medium", 16384, 256, 512, 256},
                                {"large", 8192, 784, 1024, 512}};
  std::printf("%d thread(s); median µs\n", threads);
  std::printf("%-8s %-28s %12s\n", "workload", "kernel", "µs");
  for (const auto& w : workloads) {
    const Index B = w.batch, d = w.d, h = w.h;
    const int reps = w.h >= 512 ? 20 : 200;
    Matrix<float> X = Matrix<float>::Random(w.n, d), Y = Matrix<float>::Random(w.n, 1);
    Matrix<float> W1 = Matrix<float>::Random(d, h) * 0.05f, A = Matrix<float>::Random(B, h);
    Matrix<float> P(B, h), G = Matrix<float>::Random(B, h), dW(d, h), dA(B, d);
    auto report = [&](const std::string& kernel, double us) {
      std::printf("%-8s %-28s %12.1f\n", w.name, kernel.c_str(), us);
    };
    // Raw Eigen GEMMs of the first layer's shapes, then the core's kernels on the same shapes.
    report("eigen  X·W (B,d)x(d,h)", median_us([&] { P.noalias() = X.topRows(B) * W1; }, reps));
    report("eigen  Xᵀ·G (d,B)x(B,h)",
           median_us([&] { dW.noalias() = X.topRows(B).transpose() * G; }, reps));
    report("eigen  G·Wᵀ (B,h)x(h,d)", median_us([&] { dA.noalias() = G * W1.transpose(); }, reps));
    DenseBuffers<float> buffers(B, d, h, threads);
    Matrix<float> Xb = X.topRows(B);
    MatrixMap<float> Pm(P.data(), B, h), dWm(dW.data(), d, h), dAm(dA.data(), B, d);
    ConstMatrixMap<float> Xm(Xb.data(), B, d), Wm(W1.data(), d, h), Gm(G.data(), B, h);
    RowVector<float> b = RowVector<float>::Zero(h), db(h);
    RowVectorMap<float> dbm(db.data(), h);
    report("dense_forward", median_us([&] { dense_forward<float>(Pm, Xm, Wm, &buffers); }, reps));
    report("dense_backward (with dinp)",
           median_us([&] { dense_backward<float>(&dAm, dWm, dbm, Gm, Xm, Wm, &buffers); }, reps));
    for (Activation g : {Activation::relu, Activation::tanh, Activation::gelu}) {
      const char* names[] = {"identity",   "relu",     "logistic", "tanh",
                             "leaky_relu", "softplus", "gelu"};
      MatrixMap<float> Am(A.data(), B, h);
      report(std::string("bias+activation ") + names[static_cast<int>(g)],
             median_us(
                 [&] {
                   bias_activation_forward<float>(Am, Pm, ConstRowVectorMap<float>(b.data(), h), g);
                 },
                 reps));
    }
    Matrix<float> scores = Matrix<float>::Random(B, 1), dscores(B, 1);
    report("loss squared_error fwd+bwd",
           median_us(
               [&] {
                 loss_forward_backward<float>(Loss::squared_error, dscores.data(), scores.data(),
                                              Y.data(), nullptr, B, 1, 1.0f / B);
               },
               reps));
    report("loss logistic fwd+bwd", median_us(
                                        [&] {
                                          loss_forward_backward<float>(
                                              Loss::logistic, dscores.data(), scores.data(),
                                              Y.data(), nullptr, B, 1, 1.0f / B);
                                        },
                                        reps));

    Network<float> net({d, h, h, 1}, Activation::relu, Loss::squared_error, 1e-4f);
    net.set_threads(threads);
    for (Index i = 0; i < net.n_params(); ++i) net.params()[i] = 0.01f * float(i % 7 - 3);
    net.reserve(B);
    for (OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adam}) {
      OptimizerConfig config;
      config.kind = kind;
      config.momentum = 0.9;
      Optimizer<float> optimizer(config, net.n_params());
      const std::string opt = kind == OptimizerKind::sgd ? "momentum" : "adam";
      report("update " + opt, median_us(
                                  [&] {
                                    optimizer.step(net.params(), net.grads(), 1e-6,
                                                   net.params_backup(), threads);
                                  },
                                  reps));
      report("full step " + opt,
             median_us(
                 [&] {
                   net.forward_backward(X.data(), Y.data(), nullptr, B, 1.0f / B);
                   optimizer.step(net.params(), net.grads(), 1e-6, net.params_backup(), threads);
                 },
                 reps));
      EpochOptions eo;
      eo.batch_size = B;
      eo.learning_rate = 1e-6;
      report("epoch " + opt, median_us(
                                 [&] {
                                   train_epoch<float>(net, optimizer, X.data(), Y.data(), nullptr,
                                                      w.n, nullptr, 0, eo);
                                 },
                                 5));
    }
  }
  return 0;
}
