// The matrix products of the dense layers against the machine's FMA peak, in both precisions:
// nncore's kernel (gemm.hpp) and Eigen's on the same shapes, one thread, and the whole training
// step of the benchmark's workloads. The peak is measured here, by a loop of independent vector
// FMAs (16 chains, more than latency × pipes on every x86-64 core seen), so every figure is a
// fraction of what this CPU can do.
//
//   cmake -S . -B build/bench -DNNCORE_BENCH=ON && cmake --build build/bench --target kernels
//   build/bench/kernels                 # or: kernels --json out.json;  kernels --only float64
//
// A product (M×K)·(K×N) is 2·M·N·K flops; the step's work is 6·B·Σ fan_in·fan_out less the
// first layer's input gradient (2·B·d·h₁), which is never computed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "nncore/network.hpp"
#include "nncore/optim.hpp"

using namespace nncore;
using Clock = std::chrono::steady_clock;

namespace {

double best_seconds(const std::function<void()>& f, double budget_s = 0.25) {
  f();  // warm-up: caches, page faults
  double best = 1e30, spent = 0;
  int runs = 0;
  while (runs < 5 || (spent < budget_s && runs < 2000)) {
    const auto start = Clock::now();
    f();
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, s);
    spent += s;
    ++runs;
  }
  return best;
}

// One core's FMA peak for scalar T in GFLOP/s: independent accumulator chains of vector FMAs,
// more than latency × pipes on every x86-64 core seen (12, 16 with AVX-512's 32 registers: all
// chains and both operands in registers, no spill); the compiler can neither merge nor drop them
// (they are summed after).
template <class T, int kBytes>
__attribute__((noinline)) T fma_chains(long iters) {
  typedef T V __attribute__((vector_size(kBytes)));
  constexpr int lanes = kBytes / sizeof(T), chains = kBytes == 64 ? 16 : 12;
  V acc[chains], x, y;
  for (int l = 0; l < lanes; ++l) {
    x[l] = T(0.999999);
    y[l] = T(1e-7);
  }
  for (int c = 0; c < chains; ++c) acc[c] = x * T(c);
  for (long i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int c = 0; c < chains; ++c) acc[c] = acc[c] * x + y;
  T total = 0;
  for (int c = 0; c < chains; ++c)
    for (int l = 0; l < lanes; ++l) total += acc[c][l];
  return total;
}

template <class T>
double fma_peak() {
#if defined(__AVX512F__)
  constexpr int kBytes = 64;
#elif defined(__AVX__)
  constexpr int kBytes = 32;
#else
  constexpr int kBytes = 16;
#endif
  constexpr long iters = 1'000'000;
  volatile T sink = 0;
  const double s = best_seconds([&] { sink = fma_chains<T, kBytes>(iters); }, 0.3);
  (void)sink;
  return 2.0 * (kBytes / sizeof(T)) * (kBytes == 64 ? 16.0 : 12.0) * double(iters) / s / 1e9;
}

struct Shape {
  const char* name;
  Index M, K, N;
};

std::FILE* json = nullptr;
bool first_json = true;
void record(const char* dtype, const std::string& what, const std::string& kernel, double gflops,
            double peak) {
  std::printf("%-7s %-34s %-8s %7.1f GFLOP/s  %5.1f%% of peak\n", dtype, what.c_str(),
              kernel.c_str(), gflops, 100 * gflops / peak);
  if (json)
    std::fprintf(json, "%s\n  {\"dtype\": \"%s\", \"what\": \"%s\", \"kernel\": \"%s\", "
                       "\"gflops\": %.2f, \"of_peak\": %.4f}",
                 first_json ? "" : ",", dtype, what.c_str(), kernel.c_str(), gflops,
                 gflops / peak);
  first_json = false;
}

template <class T>
void products(const char* dtype, double peak) {
  // The lab's shapes (digits and noisy-binary, full batch), the benchmark's medium and large.
  const Shape shapes[] = {{"(2000x20)(20x64)", 2000, 20, 64},     {"(2000x64)(64x64)", 2000, 64, 64},
                          {"(1257x64)(64x10)", 1257, 64, 10},     {"(256x256)(256x512)", 256, 256, 512},
                          {"(256x512)(512x512)", 256, 512, 512},  {"(512x784)(784x1024)", 512, 784, 1024},
                          {"(512x1024)(1024x1024)", 512, 1024, 1024}};
  for (const Shape& s : shapes) {
    // The three products of a layer with input (M, K) and weights (K, N): forward X·W,
    // weight gradient Xᵀ·G (K, N) over depth M, input gradient G·Wᵀ (M, K) over depth N.
    Matrix<T> X = Matrix<T>::Random(s.M, s.K), W = Matrix<T>::Random(s.K, s.N);
    Matrix<T> G = Matrix<T>::Random(s.M, s.N), P(s.M, s.N), dW(s.K, s.N), dX(s.M, s.K);
    const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
    GemmBuffers<T> fwd(s.M, s.N, s.K), wg(s.K, s.N, s.M), ig(s.M, s.K, s.N);
    auto rate = [&](const std::function<void()>& f) { return flops / best_seconds(f) / 1e9; };
    const std::string shape = s.name;
    record(dtype, "X·W  " + shape, "nncore", rate([&] {
             fwd.template product<Eigen::RowMajor, Eigen::RowMajor>(P.data(), s.N, X.data(), s.K,
                                                                    W.data(), s.N, s.M, s.N, s.K,
                                                                    false);
           }), peak);
    record(dtype, "X·W  " + shape, "eigen", rate([&] { P.noalias() = X * W; }), peak);
    record(dtype, "Xᵀ·G " + shape, "nncore", rate([&] {
             wg.template product<Eigen::ColMajor, Eigen::RowMajor>(dW.data(), s.N, X.data(), s.K,
                                                                   G.data(), s.N, s.K, s.N, s.M,
                                                                   false);
           }), peak);
    record(dtype, "Xᵀ·G " + shape, "eigen", rate([&] { dW.noalias() = X.transpose() * G; }), peak);
    record(dtype, "G·Wᵀ " + shape, "nncore", rate([&] {
             ig.template product<Eigen::RowMajor, Eigen::ColMajor>(dX.data(), s.K, G.data(), s.N,
                                                                   W.data(), s.N, s.M, s.K, s.N,
                                                                   false);
           }), peak);
    record(dtype, "G·Wᵀ " + shape, "eigen", rate([&] { dX.noalias() = G * W.transpose(); }), peak);
  }
}

// One training step (forward, loss, backward, Adam update) of a d-h-h-1 ReLU network on a batch.
template <class T>
void steps(const char* dtype, double peak) {
  struct Step {
    const char* name;
    Index d, h, B;
  } const workloads[] = {{"step small 64-128-128-1 B64", 64, 128, 64},
                         {"step medium 256-512-512-1 B256", 256, 512, 256},
                         {"step large 784-1024-1024-1 B512", 784, 1024, 512},
                         {"step lab 20-64-64-1 B2000", 20, 64, 2000}};
  for (const Step& w : workloads) {
    Matrix<T> X = Matrix<T>::Random(w.B, w.d), Y = Matrix<T>::Random(w.B, 1);
    const double work = 6.0 * w.B * (w.d * w.h + w.h * w.h + w.h) - 2.0 * w.B * w.d * w.h;
    for (bool reference : {false, true}) {
      Network<T> net({w.d, w.h, w.h, 1}, Activation::relu, Loss::squared_error, T(1e-4));
      net.set_threads(1);
      net.use_reference_products(reference);
      for (Index i = 0; i < net.n_params(); ++i) net.params()[i] = T(0.01) * T(i % 7 - 3);
      net.reserve(w.B);
      OptimizerConfig config;
      config.kind = OptimizerKind::adam;
      Optimizer<T> optimizer(config, net.n_params());
      const double s = best_seconds([&] {
        net.forward_backward(X.data(), Y.data(), nullptr, w.B, T(1) / T(w.B));
        optimizer.step(net.params(), net.grads(), 1e-9, net.params_backup(), 1);
      });
      record(dtype, w.name, reference ? "eigen" : "nncore", work / s / 1e9, peak);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;  // "float64" or "float32": that precision's rows alone
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--json") == 0) json = std::fopen(argv[i + 1], "w");
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  const double peak64 = fma_peak<double>(), peak32 = fma_peak<float>();
  std::printf("one core's FMA peak: float64 %.1f GFLOP/s, float32 %.1f GFLOP/s (%s build)\n",
              peak64, peak32, NNCORE_MARCH);
  if (json)
    std::fprintf(json, "{\"march\": \"%s\", \"peak_float64\": %.2f, \"peak_float32\": %.2f, "
                       "\"rows\": [", NNCORE_MARCH, peak64, peak32);
  if (only != "float32") products<double>("float64", peak64);
  if (only != "float64") products<float>("float32", peak32);
  if (only != "float32") steps<double>("float64", peak64);
  if (only != "float64") steps<float>("float32", peak32);
  if (json) {
    std::fprintf(json, "\n]}\n");
    std::fclose(json);
  }
  return 0;
}
