// Exercises every path of the core without Python, for AddressSanitizer, UndefinedBehaviorSanitizer
// and LeakSanitizer (.ci/sanitize builds it with -fsanitize=address,undefined). Exits non-zero on a
// failed check; the sanitizers abort on any report.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "driver_checks.hpp"
#include "nncore/hvp.hpp"
#include "nncore/network.hpp"
#include "nncore/optim.hpp"
#include "nncore/schedule.hpp"
#include "nncore/trainer.hpp"

using namespace nncore;

namespace {

using driver::check;
using driver::failures;
using driver::random_vector;

template <class T>
std::vector<T> targets_for(Loss loss, std::mt19937& rng, Index n, Index K) {
  std::vector<T> y(static_cast<size_t>(n * K), T(0));
  std::uniform_int_distribution<Index> pick(0, K - 1);
  for (Index i = 0; i < n; ++i) {
    for (Index k = 0; k < K; ++k) {
      T& v = y[static_cast<size_t>(i * K + k)];
      if (loss == Loss::squared_error) v = static_cast<T>(std::normal_distribution<double>()(rng));
      if (loss == Loss::logistic) v = static_cast<T>(rng() % 2);
      if (loss == Loss::poisson) v = static_cast<T>(rng() % 4);
    }
    if (loss == Loss::softmax) y[static_cast<size_t>(i * K + pick(rng))] = T(1);
  }
  return y;
}

template <class T>
void exercise(Activation act, Loss loss, bool batch_norm, OptimizerKind kind, std::mt19937& rng,
              bool dropout) {
  const Index n = 37, d = 5, K = 3;
  Network<T> net({d, 7, 4, K}, act, loss, T(0.01), batch_norm);
  net.set_threads(batch_norm ? 2 : 1);
  if (dropout) {
    net.set_dropout({0.5, 0.0});  // a layer with dropout beside one without
    net.set_dropout_seed(rng());
  }
  auto init = random_vector<T>(rng, static_cast<size_t>(net.n_params()), 0.3);
  std::copy(init.begin(), init.end(), net.params());
  auto X = random_vector<T>(rng, static_cast<size_t>(n * d), 1.0);
  auto Y = targets_for<T>(loss, rng, n, K);
  auto w = random_vector<T>(rng, static_cast<size_t>(n), 1.0);
  for (auto& x : w) x = std::abs(x) + T(0.1);

  std::vector<T> scores(static_cast<size_t>(n * K));
  net.predict_scores(X.data(), n, scores.data());
  bool finite = true;
  for (T v : scores) finite &= std::isfinite(v);
  check(finite, "finite scores");

  net.reserve(n);
  const double objective =
      net.forward_backward(X.data(), Y.data(), w.data(), n, T(1) / T(n), dropout);
  check(std::isfinite(objective), "finite objective");
  check(net.dropout_step() == (dropout ? 1u : 0u), "one dropout step per masked pass");
  check(net.input_grad_counts()[0] == 0, "no input gradient for layer 0");

  OptimizerConfig config;
  config.kind = kind;
  config.momentum = kind == OptimizerKind::sgd ? 0.9 : 0.0;
  config.nesterov = true;
  config.weight_decay = 0.01;
  Optimizer<T> optimizer(config, net.n_params());
  ScheduleConfig sc;
  sc.kind = ScheduleKind::cosine;
  sc.learning_rate_init = 0.01;
  sc.warmup_epochs = 1;
  Schedule schedule(sc);

  std::vector<int64_t> order(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) order[static_cast<size_t>(i)] = (i * 7) % n;
  for (int epoch = 0; epoch < 3; ++epoch) {
    EpochOptions opt;
    opt.batch_size = 6;  // 37 = 6·6 + 1 would leave one row: batch norm needs the given order
    opt.learning_rate = schedule.learning_rate();
    opt.shuffle = epoch != 1;
    opt.seed = static_cast<uint64_t>(epoch);
    opt.reduction = epoch == 2 ? Reduction::sum : Reduction::mean;
    if (opt.reduction == Reduction::sum)
      opt.learning_rate /= static_cast<double>(n);  // n× gradient
    EpochResult r;
    if (batch_norm) {
      opt.batch_size = 5;  // 36 rows in order: batches of 5, last of 1 is avoided below
      r = train_epoch<T>(net, optimizer, X.data(), Y.data(), w.data(), n, order.data(), n - 2, opt);
    } else {
      r = train_epoch<T>(net, optimizer, X.data(), Y.data(), epoch == 0 ? nullptr : w.data(), n,
                         epoch == 1 ? nullptr : order.data(), epoch == 1 ? 0 : n, opt);
    }
    if (r.diverged || !std::isfinite(r.mean_loss))
      std::printf("  (activation %d, loss %d, batch norm %d, optimiser %d, epoch %d)\n",
                  static_cast<int>(act), static_cast<int>(loss), batch_norm, static_cast<int>(kind),
                  epoch);
    check(!r.diverged && std::isfinite(r.mean_loss), "epoch finite");
    schedule.epoch_end(r.mean_loss, static_cast<double>((epoch + 1) * n));
  }
  if (batch_norm) net.set_batchnorm_statistics(X.data(), n);
  check(std::isfinite(net.weighted_loss_sum(X.data(), Y.data(), nullptr, n)), "finite loss");
  if (dropout) {
    // Rates changing which layers drop reallocate the workspace: the masks' buffers follow.
    net.set_dropout({0.0, 0.3});
    net.reserve(n);
    check(std::isfinite(net.forward_backward(X.data(), Y.data(), nullptr, n, T(1) / T(n), true)),
          "finite objective after the dropout layers changed");
  }

  // Sparse rows (sparse.hpp): the rows as CSR, a third of the entries left out, give the
  // scores and gradients of the same rows dense, and an epoch runs on them in place.
  {
    std::vector<int64_t> indptr{0}, indices;
    std::vector<T> values, twin(X.size(), T(0));
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < d; ++j) {
        if ((i + j) % 3 == 0) continue;
        indices.push_back(j);
        values.push_back(X[static_cast<size_t>(i * d + j)]);
        twin[static_cast<size_t>(i * d + j)] = values.back();
      }
      indptr.push_back(static_cast<int64_t>(indices.size()));
    }
    const Csr<T> csr{indptr.data(), indices.data(), values.data(), n, d};
    check_csr(csr, static_cast<Index>(values.size()));
    const double tol = sizeof(T) == 4 ? 1e-3 : 1e-9;
    std::vector<T> dense_scores(static_cast<size_t>(n * K)), sparse_scores(dense_scores.size());
    net.predict_scores(twin.data(), n, dense_scores.data());
    net.predict_scores(InputRows<T>(csr, nullptr, 0), n, sparse_scores.data());
    double worst = 0;
    for (size_t i = 0; i < dense_scores.size(); ++i)
      worst = std::max(worst, std::abs(double(dense_scores[i]) - double(sparse_scores[i])));
    check(worst < tol, "sparse scores = dense scores");
    net.reserve(n);
    net.forward_backward(twin.data(), Y.data(), w.data(), n, T(1) / T(n), false);
    // CSR rows read in `order`, as a shuffled epoch reads them; Y and w gathered in that order
    // (the trainer's batch buffers), and the same rows dense for the comparison.
    std::vector<T> twin_rows(twin.size()), Y_rows(Y.size()), w_rows(w.size());
    for (Index r = 0; r < n; ++r) {
      const Index src = order[static_cast<size_t>(r)];
      std::copy_n(twin.begin() + src * d, d, twin_rows.begin() + r * d);
      std::copy_n(Y.begin() + src * K, K, Y_rows.begin() + r * K);
      w_rows[static_cast<size_t>(r)] = w[static_cast<size_t>(src)];
    }
    net.forward_backward(InputRows<T>(csr, order.data(), 0), Y_rows.data(), w_rows.data(), n,
                         T(1) / T(n), false);
    std::vector<T> sparse_grads(net.grads(), net.grads() + net.n_params());
    net.forward_backward(twin_rows.data(), Y_rows.data(), w_rows.data(), n, T(1) / T(n), false);
    worst = 0;
    for (Index i = 0; i < net.n_params(); ++i)
      worst = std::max(worst, std::abs(double(net.grads()[i]) - double(sparse_grads[size_t(i)])));
    check(worst < tol, "sparse gradients (rows in an order) = dense gradients");
    EpochOptions opt;
    opt.batch_size = batch_norm ? 5 : 6;
    opt.learning_rate = 0.01;
    opt.shuffle = true;
    const EpochResult r = train_epoch<T>(net, optimizer, nullptr, &csr, Y.data(), w.data(), n,
                                         batch_norm ? order.data() : nullptr,
                                         batch_norm ? n - 2 : 0, opt);
    check(!r.diverged && std::isfinite(r.mean_loss), "sparse epoch finite");
    net.reserve(n);  // dense rows again: the workspace grows back its dense minibatch
    check(std::isfinite(net.forward_backward(X.data(), Y.data(), nullptr, n, T(1) / T(n))),
          "dense pass after a sparse epoch");
  }

  // Exact H·v twice, on all rows and on fewer (the buffers are reused and must not be read past
  // the rows given): the Hessian is symmetric, uᵀ(Hv) = vᵀ(Hu).
  HessianVectorProduct<T> hvp;
  auto u = random_vector<T>(rng, static_cast<size_t>(net.n_params()), 1.0);
  auto v = random_vector<T>(rng, static_cast<size_t>(net.n_params()), 1.0);
  std::vector<T> hu(u.size()), hv(v.size()), grad(v.size());
  for (Index rows : {n, n - 9}) {
    hvp.apply(net, X.data(), Y.data(), w.data(), rows, T(1) / T(rows), u.data(), hu.data(),
              grad.data(), true);
    const double value = hvp.apply(net, X.data(), Y.data(), nullptr, rows, T(1) / T(rows),
                                   v.data(), hv.data(), nullptr, rows == n);
    check(std::isfinite(value), "finite objective from the H·v pass");
  }
  double uhv = 0, vhu = 0, scale = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    uhv += double(u[i]) * double(hv[i]);
    vhu += double(v[i]) * double(hu[i]);
    scale += std::abs(double(u[i]) * double(hv[i]));
  }
  (void)vhu;  // hu above used sample weights and the penalty, hv neither: not comparable
  hvp.apply(net, X.data(), Y.data(), nullptr, n - 9, T(1) / T(n - 9), u.data(), hu.data(), nullptr,
            false);
  vhu = 0;
  for (size_t i = 0; i < u.size(); ++i) vhu += double(v[i]) * double(hu[i]);
  check(std::abs(uhv - vhu) <= (sizeof(T) == 4 ? 1e-3 : 1e-9) * std::max(1.0, scale),
        "symmetric Hessian: u·Hv = v·Hu");

  // Several vectors over one shared pass give each vector's lone product.
  std::vector<T> UV(u);
  UV.insert(UV.end(), v.begin(), v.end());
  std::vector<T> HUV(UV.size());
  hvp.apply_many(net, X.data(), Y.data(), nullptr, n - 9, T(1) / T(n - 9), UV.data(), HUV.data(),
                 2, false);
  double differ = 0, size = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    differ = std::max(differ, std::abs(double(HUV[i]) - double(hu[i])));
    size = std::max(size, std::abs(double(hu[i])));
  }
  check(differ <= 1e-5 * std::max(1.0, size), "apply_many = apply, vector by vector");
}

template <class T>
void error_paths() {
  auto expect_throw = [](auto&& f, const char* what) {
    bool thrown = false;
    try {
      f();
    } catch (const std::invalid_argument&) {
      thrown = true;
    }
    check(thrown, what);
  };
  expect_throw([] { Network<T>({3}, Activation::relu, Loss::squared_error, T(0)); }, "sizes");
  expect_throw([] { Network<T>({3, 0, 1}, Activation::relu, Loss::squared_error, T(0)); },
               "zero width");
  expect_throw([] { Network<T>({3, 1}, Activation::relu, Loss::softmax, T(0)); }, "softmax K");
  expect_throw([] { Network<T>({3, 2}, Activation::relu, Loss::squared_error, T(-1)); }, "alpha");
  {
    Network<T> two({3, 4, 4, 1}, Activation::relu, Loss::squared_error, T(0));
    expect_throw([&] { two.set_dropout({0.5}); }, "dropout: one rate per hidden layer");
    expect_throw([&] { two.set_dropout({0.5, 1.0}); }, "dropout rate 1");
    expect_throw([&] { two.set_dropout({-0.1, 0.0}); }, "negative dropout rate");
    expect_throw([&] { two.set_dropout({std::nan(""), 0.0}); }, "NaN dropout rate");
  }
  Network<T> bn({3, 4, 1}, Activation::tanh, Loss::squared_error, T(0), true);
  std::vector<T> X(9, T(1)), Y(3, T(0));
  bn.reserve(3);
  expect_throw([&] { bn.forward_backward(X.data(), Y.data(), nullptr, 1, T(1)); }, "BN B=1");
  OptimizerConfig bad;
  bad.beta1 = 1.0;
  bad.kind = OptimizerKind::adam;
  expect_throw([&] { Optimizer<T>(bad, 4); }, "beta1");
  Optimizer<T> sgd(OptimizerConfig{}, bn.n_params());
  EpochOptions opt;
  opt.batch_size = 2;  // 3 rows -> a trailing batch of 1 row under batch norm
  expect_throw([&] { train_epoch<T>(bn, sgd, X.data(), Y.data(), nullptr, 3, nullptr, 0, opt); },
               "BN trailing batch");
  int64_t bad_order[2] = {0, 5};
  Network<T> plain({3, 1}, Activation::relu, Loss::squared_error, T(0));
  Optimizer<T> sgd2(OptimizerConfig{}, plain.n_params());
  expect_throw(
      [&] { train_epoch<T>(plain, sgd2, X.data(), Y.data(), nullptr, 3, bad_order, 2, opt); },
      "order range");
  // Divergence: a step with a non-finite gradient is refused and changes nothing.
  std::vector<T> bad_x(9, std::numeric_limits<T>::quiet_NaN());
  plain.reserve(3);
  plain.forward_backward(bad_x.data(), Y.data(), nullptr, 3, T(1));
  std::vector<T> before(plain.params(), plain.params() + plain.n_params());
  check(!sgd2.step(plain.params(), plain.grads(), 0.1, plain.params_backup()),
        "divergent step refused");
  check(std::equal(before.begin(), before.end(), plain.params()), "parameters unchanged");
}

// The GEMM kernel (gemm.hpp, when built in) against Eigen's plain products, on shapes off every
// tile, panel and block edge (depth 1 too), one and two threads: the same forward pass and gradient.
template <class T>
void kernel_matches_reference(std::mt19937& rng) {
  const std::vector<std::vector<Index>> shapes = {
      {300, 530, 13, 2}, {37, 45, 33, 1}, {17, 12, 32, 3}, {5, 1, 7, 2}, {1, 9, 1, 1}};
  const T tol = std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
  for (const auto& sizes : shapes)
    for (int threads : {1, 2}) {
      const Index B = 61;
      Network<T> fast(sizes, Activation::tanh, Loss::squared_error, T(0.01));
      Network<T> plain(sizes, Activation::tanh, Loss::squared_error, T(0.01));
      fast.set_threads(threads);
      plain.use_reference_products(true);
      auto init = random_vector<T>(rng, static_cast<size_t>(fast.n_params()), 0.1);
      std::copy(init.begin(), init.end(), fast.params());
      std::copy(init.begin(), init.end(), plain.params());
      fast.reserve(B);
      plain.reserve(B);
      auto X = random_vector<T>(rng, static_cast<size_t>(B * sizes.front()), 1.0);
      auto Y = random_vector<T>(rng, static_cast<size_t>(B * sizes.back()), 1.0);
      fast.forward_backward(X.data(), Y.data(), nullptr, B, T(1) / T(B));
      plain.forward_backward(X.data(), Y.data(), nullptr, B, T(1) / T(B));
      T worst = 0, largest = 0;
      for (Index i = 0; i < fast.n_params(); ++i) {
        worst = std::max(worst, std::abs(fast.grads()[i] - plain.grads()[i]));
        largest = std::max(largest, std::abs(plain.grads()[i]));
      }
      check(worst <= tol * largest, "GEMM kernel gradients match Eigen's products");
    }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  const Activation acts[] = {Activation::identity, Activation::relu,       Activation::logistic,
                             Activation::tanh,     Activation::leaky_relu, Activation::softplus,
                             Activation::gelu};
  const Loss losses[] = {Loss::squared_error, Loss::logistic, Loss::softmax, Loss::poisson};
  const OptimizerKind kinds[] = {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw};
  int runs = 0;
  for (Activation act : acts)
    for (Loss loss : losses)
      for (bool bn : {false, true}) {
        exercise<double>(act, loss, bn, kinds[runs % 3], rng, runs % 4 == 0);
        exercise<float>(act, loss, bn, kinds[(runs + 1) % 3], rng, runs % 4 == 2);
        runs += 2;
      }
  error_paths<double>();
  error_paths<float>();
  kernel_matches_reference<float>(rng);
  kernel_matches_reference<double>(rng);
#ifdef NNCORE_GEMM
  const char* kernel = gemm::kAvx512 ? "nncore AVX-512" : "nncore AVX2";
#else
  const char* kernel = "Eigen";
#endif
  std::printf("%d configurations exercised (GEMM kernel: %s), %d failed checks\n", runs,
              kernel, failures);
  return failures == 0 ? 0 : 1;
}
