// Many readers or one writer: how threads share one network.
//
// Evaluation only reads a network (each call has a workspace of its own), so any number of
// threads evaluate at once; training and every setter write it and need it alone. A reader takes
// the lock with one compare-and-swap and releases it with one atomic decrement; only a thread that
// must wait touches the mutex. A waiting writer holds back new readers, so a steady stream of
// predictions cannot starve a training call, and a training epoch holds the lock from its first
// step to its last, so a prediction sees the weights before or after it, never a mix.
// Blocking waits happen with Python's GIL released (the bindings release it first).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

namespace nncore {

class SharedUseLock {
 public:
  void lock_shared() {
    for (;;) {
      int state = state_.load(std::memory_order_relaxed);
      if (state >= 0 && writers_waiting_.load(std::memory_order_seq_cst) == 0) {
        if (state_.compare_exchange_weak(state, state + 1, std::memory_order_seq_cst))
          return;
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return state_.load(std::memory_order_seq_cst) >= 0 &&
               writers_waiting_.load(std::memory_order_seq_cst) == 0;
      });
    }
  }
  void unlock_shared() {
    if (state_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        writers_waiting_.load(std::memory_order_seq_cst) > 0)
      notify();
  }
  void lock() {
    writers_waiting_.fetch_add(1, std::memory_order_seq_cst);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        int idle = 0;
        return state_.compare_exchange_strong(idle, -1, std::memory_order_seq_cst);
      });
    }
    writers_waiting_.fetch_sub(1, std::memory_order_seq_cst);
    // Readers held back only by this writer's wait keep waiting on state_ < 0 until unlock().
  }
  void unlock() {
    state_.store(0, std::memory_order_seq_cst);
    notify();
  }

 private:
  void notify() {
    std::lock_guard<std::mutex> lock(mutex_);
    changed_.notify_all();
  }

  std::atomic<int> state_{0};  // > 0: readers; -1: a writer
  std::atomic<int> writers_waiting_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
};

// Holds of a SharedUseLock: it meets the standard's SharedMutex requirements, so the standard
// holders serve.
using SharedUse = std::shared_lock<SharedUseLock>;
using SoleUse = std::unique_lock<SharedUseLock>;

}  // namespace nncore
