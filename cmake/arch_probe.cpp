// Configure-time probe for NNCORE_ARCH=auto: prints the float32 GEMM rate (GFLOP/s) that Eigen
// reaches when compiled with the flags under test, so the build picks what is fastest here.
#include <Eigen/Core>
#include <chrono>
#include <cstdio>

int main() {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int n = 512;
  Mat a = Mat::Random(n, n), b = Mat::Random(n, n), c(n, n);
  double best = 1e30;
  for (int r = 0; r < 6; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < best) best = s;
  }
  std::printf("%.1f", 2.0 * n * n * n / best / 1e9 + 0.0 * c(0, 0));
  return 0;
}
