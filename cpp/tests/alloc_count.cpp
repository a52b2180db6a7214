// Counts heap allocations inside training steps. glibc lets a program replace malloc and
// friends; these forward to glibc's own and count every call made between start() and stop().
// Built and run by .ci/sanitize (one g++ command line, no CMake).
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

static std::atomic<long> g_allocations{0};
static std::atomic<bool> g_counting{false};

static void note() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}

extern "C" {
void* malloc(size_t n) noexcept {
  note();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) noexcept {
  note();
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) noexcept {
  note();
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) noexcept {
  note();
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) noexcept {
  note();
  return __libc_memalign(a, n);
}
int posix_memalign(void** p, size_t a, size_t n) noexcept {
  note();
  *p = __libc_memalign(a, n);
  return *p ? 0 : 12;
}
void free(void* p) noexcept { __libc_free(p); }
}

#include "nncore/network.hpp"
#include "nncore/optim.hpp"
#include "nncore/trainer.hpp"

using namespace nncore;

// The performance workloads' shapes (issue: tiny, small, medium, large), float32.
struct Workload {
  const char* name;
  Index d, h1, h2, batch;
};

int main() {
  const Workload workloads[] = {{"tiny", 16, 32, 32, 32},
                                {"small", 64, 128, 128, 64},
                                {"medium", 256, 512, 512, 256},
                                {"large", 784, 1024, 1024, 512}};
  long total = 0;
  for (const auto& w : workloads) {
    for (OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adam}) {
      for (int variant = 0; variant < 4; ++variant) {
        const bool batch_norm = variant % 2 == 1, dropout = variant >= 2;
        // the threaded products (and threaded mask drawing) too, with OpenMP
        const int threads = batch_norm ? 2 : 1;
        Network<float> net({w.d, w.h1, w.h2, 1}, Activation::relu, Loss::squared_error, 1e-4f,
                           batch_norm);
        net.set_threads(threads);
        if (dropout) net.set_dropout({0.5, 0.2});
        for (Index i = 0; i < net.n_params(); ++i) net.params()[i] = 0.01f * float(i % 7 - 3);
        OptimizerConfig config;
        config.kind = kind;
        config.momentum = 0.9;
        Optimizer<float> optimizer(config, net.n_params());
        const Index n = 2 * w.batch;
        std::vector<float> X(static_cast<size_t>(n * w.d)), Y(static_cast<size_t>(n));
        for (size_t i = 0; i < X.size(); ++i) X[i] = float(int(i % 13) - 6) / 6.0f;
        for (size_t i = 0; i < Y.size(); ++i) Y[i] = float(i % 3);
        std::vector<int64_t> order(static_cast<size_t>(n));
        for (Index i = 0; i < n; ++i) order[static_cast<size_t>(i)] = (i * 5) % n;
        EpochOptions opt;
        opt.batch_size = w.batch;
        opt.learning_rate = 1e-3;
        train_epoch<float>(net, optimizer, X.data(), Y.data(), nullptr, n, order.data(), n, opt);

        g_allocations = 0;
        g_counting = true;
        for (int step = 0; step < 3; ++step) {  // whole steps: forward, backward, update
          net.forward_backward(X.data(), Y.data(), nullptr, w.batch, 1.0f / float(w.batch),
                               dropout);
          optimizer.step(net.params(), net.grads(), 1e-3, net.params_backup());
          if (batch_norm) net.update_running_statistics(w.batch);
        }
        opt.continuing = true;  // and a whole epoch over a given order
        train_epoch<float>(net, optimizer, X.data(), Y.data(), nullptr, n, order.data(), n, opt);
        g_counting = false;
        std::printf("%s %s%s%s, %d thread(s): %ld allocations\n", w.name,
                    kind == OptimizerKind::sgd ? "sgd" : "adam", batch_norm ? " bn" : "",
                    dropout ? " dropout" : "", net.threads(), g_allocations.load());
        total += g_allocations.load();
      }
    }
  }
  std::printf("total %ld\n", total);
  return total == 0 ? 0 : 1;
}
