// What the C++ test drivers share: a failed-check counter and random test data.
#pragma once

#include <cstdio>
#include <random>
#include <vector>

namespace driver {

inline int failures = 0;

// Counts and prints a failed check; the driver exits non-zero if any failed.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

// n values drawn from N(0, scale²), as T.
template <class T>
std::vector<T> random_vector(std::mt19937& rng, size_t n, double scale) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(normal(rng));
  return v;
}

}  // namespace driver
