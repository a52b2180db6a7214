// Step-size schedules, evaluated per epoch (scikit-learn's granularity), for every optimiser.
//
//   constant      η_e = η0
//   invscaling    η = η0 / (t + 1)^power_t after each epoch, t = samples seen so far
//                 (scikit-learn's t_; the first epoch runs at η0)
//   adaptive      η0 until the monitored loss fails to improve by tol for more than
//                 n_iter_no_change epochs in a row, then η ← η/5 and the count restarts;
//                 gives up (asks to stop) once η <= 1e-6 — scikit-learn's 'adaptive'
//   step          η_e = η0 γ^⌊e / step_size⌋
//   exponential   η_e = η0 γ^e
//   cosine        η_e = η_min + ½ (η0 − η_min)(1 + cos(π e / E)),  E = total_epochs (η_min after)
// Optional linear warm-up for any schedule: epoch e < W runs at η_e (e + 1)/W; the schedule's own
// epoch count starts after the warm-up. e counts completed epochs from 0.
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "tensor.hpp"

namespace nncore {

enum class ScheduleKind { constant, invscaling, adaptive, step, exponential, cosine };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  double learning_rate_init = 1e-3;
  double power_t = 0.5;            // invscaling
  Index n_iter_no_change = 10;     // adaptive
  double tol = 1e-4;               // adaptive
  Index step_size = 10;            // step
  double gamma = 0.1;              // step, exponential
  Index total_epochs = 100;        // cosine
  double min_learning_rate = 0.0;  // cosine
  Index warmup_epochs = 0;         // any schedule
};

class Schedule {
 public:
  explicit Schedule(const ScheduleConfig& config) : c_(config) {
    // The ranges users set are checked once, in Python (nncore._validation.BOUNDS: its messages
    // name the caller's parameter, and scikit-learn's constraint tables are built from it).
    // Here only what the arithmetic below cannot survive: the step and cosine schedules divide
    // by step_size and total_epochs.
    require(c_.step_size >= 1, [&] {
      return std::string("step_size must be >= 1, got " + std::to_string(c_.step_size));
    });
    require(c_.total_epochs >= 1, [&] {
      return std::string("total_epochs must be >= 1, got " + std::to_string(c_.total_epochs));
    });
    base_ = c_.learning_rate_init;
  }

  const ScheduleConfig& config() const { return c_; }
  Index epoch() const { return epoch_; }
  Index no_improvement_count() const { return no_improvement_count_; }
  double best_loss() const { return best_loss_; }

  // The state a warm start needs (base_learning_rate is η0 as adaptive/invscaling left it).
  double base_learning_rate() const { return base_; }
  void set_state(Index epoch, double base_learning_rate, Index no_improvement_count,
                 double best_loss) {
    require(epoch >= 0 && no_improvement_count >= 0, "schedule counters must be >= 0");
    require(std::isfinite(base_learning_rate) && base_learning_rate > 0,
            "base_learning_rate must be a finite number > 0");
    epoch_ = epoch;
    base_ = base_learning_rate;
    no_improvement_count_ = no_improvement_count;
    best_loss_ = best_loss;
  }

  // The step size for the coming epoch.
  double learning_rate() const {
    double eta = base_;
    const Index e = epoch_ - c_.warmup_epochs;  // epochs of the schedule proper
    switch (c_.kind) {
      case ScheduleKind::constant:
      case ScheduleKind::invscaling:
      case ScheduleKind::adaptive:
        break;  // base_ carries their state
      case ScheduleKind::step:
        eta *= std::pow(c_.gamma, static_cast<double>(std::max<Index>(e, 0) / c_.step_size));
        break;
      case ScheduleKind::exponential:
        eta *= std::pow(c_.gamma, static_cast<double>(std::max<Index>(e, 0)));
        break;
      case ScheduleKind::cosine: {
        const double progress =
            std::min(1.0, static_cast<double>(std::max<Index>(e, 0)) / c_.total_epochs);
        eta = c_.min_learning_rate +
              0.5 * (base_ - c_.min_learning_rate) * (1.0 + std::cos(M_PI * progress));
        break;
      }
    }
    if (epoch_ < c_.warmup_epochs)
      eta *= static_cast<double>(epoch_ + 1) / static_cast<double>(c_.warmup_epochs);
    return eta;
  }

  // After an epoch: `monitored_loss` is what 'adaptive' watches (training loss, or minus a
  // validation score), `samples_seen` is the total number of samples trained on so far.
  // Returns true when the adaptive schedule asks to stop (its step size is already <= 1e-6).
  bool epoch_end(double monitored_loss, double samples_seen) {
    ++epoch_;
    if (monitored_loss > best_loss_ - c_.tol)
      ++no_improvement_count_;
    else
      no_improvement_count_ = 0;
    if (monitored_loss < best_loss_) best_loss_ = monitored_loss;
    if (c_.kind == ScheduleKind::invscaling)
      base_ = c_.learning_rate_init / std::pow(samples_seen + 1.0, c_.power_t);
    if (c_.kind == ScheduleKind::adaptive && no_improvement_count_ > c_.n_iter_no_change) {
      if (base_ <= 1e-6) return true;
      base_ /= 5.0;
      no_improvement_count_ = 0;
    }
    return false;
  }

 private:
  ScheduleConfig c_;
  double base_;
  Index epoch_ = 0;
  Index no_improvement_count_ = 0;
  double best_loss_ = std::numeric_limits<double>::infinity();
};

}  // namespace nncore
