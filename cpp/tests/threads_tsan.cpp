// One network shared by threads, for ThreadSanitizer (.ci/sanitize builds it with
// -fsanitize=thread): several threads evaluate it at once while the pool splits their products and
// blocks, then one thread trains it beside them under the bindings' lock (shared_use.hpp), and
// separate networks train side by side on the one pool. Exits non-zero on a failed check; TSan
// exits non-zero on any report (halt_on_error).
#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "driver_checks.hpp"
#include "nncore/network.hpp"
#include "nncore/optim.hpp"
#include "nncore/shared_use.hpp"
#include "nncore/trainer.hpp"

using namespace nncore;

namespace {

using driver::check;
using driver::failures;
using driver::random_vector;

// Large enough that every product, elementwise pass and evaluation is split over the pool:
// 512 rows × 256 units (2^17 elements), products of 512 × 256 × 256 multiply-adds.
constexpr Index kRows = 1024, kInputs = 64, kHidden = 256, kBatch = 512;

template <class T>
void run(bool batch_norm) {
  std::mt19937 rng(batch_norm ? 2 : 1);
  Network<T> net({kInputs, kHidden, kHidden, 1}, Activation::relu, Loss::squared_error, T(1e-4),
                 batch_norm);
  net.set_threads(2);
  const auto init = random_vector<T>(rng, static_cast<size_t>(net.n_params()), 0.05);
  std::copy(init.begin(), init.end(), net.params());
  const auto X = random_vector<T>(rng, static_cast<size_t>(kRows * kInputs), 1.0);
  const auto Y = random_vector<T>(rng, static_cast<size_t>(kRows), 1.0);
  OptimizerConfig config;
  config.kind = OptimizerKind::adam;
  Optimizer<T> optimizer(config, net.n_params());
  EpochOptions options;
  options.batch_size = kBatch;
  options.learning_rate = 1e-3;
  options.shuffle = true;
  SharedUseLock lock;

  std::vector<T> expected(kRows);
  net.predict_scores(X.data(), kRows, expected.data());

  // 1. Readers only: every thread gets the single-thread answer.
  std::atomic<int> mismatches{0};
  {
    std::vector<std::thread> readers;
    for (int r = 0; r < 4; ++r)
      readers.emplace_back([&] {
        std::vector<T> out(kRows);
        for (int k = 0; k < 3; ++k) {
          SharedUse use(lock);
          net.predict_scores(X.data(), kRows, out.data());
          if (out != expected) ++mismatches;
          if (!std::isfinite(net.weighted_loss_sum(X.data(), Y.data(), nullptr, kRows)))
            ++mismatches;
        }
      });
    for (auto& t : readers) t.join();
  }
  check(mismatches == 0, "parallel predictions equal the single-thread one");

  // 2. One writer training epochs beside the readers.
  std::atomic<bool> training{true};
  std::atomic<int> not_finite{0};
  std::thread trainer([&] {
    for (int e = 0; e < 3; ++e) {
      SoleUse use(lock);
      options.seed = static_cast<uint64_t>(e);
      train_epoch<T>(net, optimizer, X.data(), Y.data(), nullptr, kRows, nullptr, 0, options);
    }
    training = false;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r)
    readers.emplace_back([&] {
      std::vector<T> out(kRows);
      while (training) {
        SharedUse use(lock);
        net.predict_scores(X.data(), kRows, out.data());
        for (T v : out) not_finite += !std::isfinite(static_cast<double>(v));
      }
    });
  trainer.join();
  for (auto& t : readers) t.join();
  check(not_finite == 0, "predictions beside training are finite");

  // 3. Separate networks training at once on the shared pool.
  std::vector<std::thread> fits;
  for (int f = 0; f < 3; ++f)
    fits.emplace_back([&, f] {
      Network<T> own({kInputs, kHidden, kHidden, 1}, Activation::tanh, Loss::squared_error,
                     T(0), batch_norm);
      own.set_threads(2);
      std::copy(init.begin(), init.end(), own.params());
      Optimizer<T> opt(config, own.n_params());
      EpochOptions o = options;
      o.seed = static_cast<uint64_t>(f);
      train_epoch<T>(own, opt, X.data(), Y.data(), nullptr, kRows, nullptr, 0, o);
    });
  for (auto& t : fits) t.join();
}

// The pool alone: many short loops one after another, each with a different number of tasks (a
// worker late for one loop must never run a task of the next), every task run exactly once.
void pool_loops(int loops) {
  std::vector<std::atomic<int>> runs(64);
  long wrong = 0;
  for (int loop = 0; loop < loops; ++loop) {
    const int tasks = 2 + loop % 13 + (loop % 7 == 0 ? 40 : 0);
    for (auto& r : runs) r = 0;
    threads::parallel_for(2 + loop % 3, tasks, [&](int64_t task, int) {
      runs[static_cast<size_t>(task)].fetch_add(1, std::memory_order_relaxed);
    });
    for (int i = 0; i < 64; ++i) wrong += runs[static_cast<size_t>(i)] != (i < tasks ? 1 : 0);
  }
  check(wrong == 0, "every task of every loop ran exactly once");
}

}  // namespace

int main() {
  pool_loops(200000);
  run<float>(false);
  run<double>(false);
  run<double>(true);
  std::printf(failures == 0 ? "threads: all checks passed\n" : "threads: %d checks failed\n",
              failures);
  return failures == 0 ? 0 : 1;
}
