// The core's threads: one process-wide pool of workers for its parallel loops, and the default
// thread count.
//
// Why a pool of our own rather than OpenMP's `parallel for`:
//   - Work is cut into more tasks than threads, handed out one at a time from a shared counter:
//     a thread that has lost its core to another process holds up at most the task it is running,
//     while the others take the rest (a static split makes every loop wait for the slowest thread,
//     for a scheduler time slice each time it is descheduled).
//   - A waiting thread spins only briefly, then sleeps: it does not burn a core another process
//     needs (libgomp spins for milliseconds by default, and its policy is fixed when it loads).
//   - The default thread count is one process-wide limit that threadpoolctl reads and sets (the
//   bindings export it as C functions), starting from OMP_NUM_THREADS like every library around.
//   - ThreadSanitizer understands it: plain std::thread, mutexes and atomics.
// Tasks are numbered and a task's work depends only on its number, never on the thread that runs
// it, so results do not depend on the thread count or on which thread ran what.
//
// One loop runs on the pool at a time: a loop started while another runs (from another Python
// thread, or nested inside a task) runs all its tasks on its own thread. Workers are started when
// first needed (reserve() asks for them ahead of a training step, which then starts none) and
// live until the process ends; a forked child starts with none.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace nncore {

namespace threads {

constexpr int kMaxThreads = 1024;

// CPUs this process may run on (its affinity mask), at least 1.
inline int usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// The default when a computation asks for no particular number: OMP_NUM_THREADS (its first entry,
// as OpenMP reads it) if set to a positive integer, else every usable CPU.
inline int initial_limit() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && n >= 1 && (*end == '\0' || *end == ',')) return static_cast<int>(std::min<long>(n, kMaxThreads));
  }
  return usable_cpus();
}

inline std::atomic<int>& limit_storage() {
  static std::atomic<int> limit{initial_limit()};
  return limit;
}

// The process-wide default thread count (threadpoolctl's num_threads for nncore).
inline int limit() { return limit_storage().load(std::memory_order_relaxed); }
inline void set_limit(int n) {
  limit_storage().store(std::clamp(n, 1, kMaxThreads), std::memory_order_relaxed);
}
// A requested count (> 0), or the current limit for 0 ("the default").
inline int resolve(int requested) { return requested > 0 ? std::min(requested, kMaxThreads) : limit(); }

// How long a waiting thread spins before it sleeps. Long enough to bridge the gaps between the
// loops of one training step on an idle machine; short enough that a thread waiting in vain gives
// its core back quickly.
constexpr std::chrono::microseconds kSpin{50};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until ready() or kSpin has passed; returns ready().
template <class Ready>
bool spin_until(Ready&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

// Waits until ready(): spins while the wait is likely short, then yields the core between checks
// (for waits on work another thread of the same loop is finishing).
template <class Ready>
void wait_until(Ready&& ready) {
  if (spin_until(ready)) return;
  while (!ready()) std::this_thread::yield();
}

class Pool {
 public:
  // f(task, slot) for task in [0, tasks), on up to `threads` threads: the caller is slot 0 and
  // worker i slot i + 1, so slot < threads indexes per-thread scratch space. f must not throw.
  template <class F>
  void run(int threads, int64_t tasks, F& f) {
    threads = static_cast<int>(std::min<int64_t>({threads, tasks, kMaxThreads}));
    if (threads <= 1 || tasks >= static_cast<int64_t>(kSpent) ||
        busy_.exchange(true, std::memory_order_acquire)) {
      for (int64_t i = 0; i < tasks; ++i) f(i, 0);
      return;
    }
    start_workers(threads - 1);
    call_.store(&trampoline<F>, std::memory_order_release);
    context_.store(static_cast<void*>(&f), std::memory_order_release);
    tasks_.store(tasks, std::memory_order_release);
    threads_.store(threads, std::memory_order_release);
    done_.store(0, std::memory_order_relaxed);
    const uint64_t generation = ++generation_;
    ticket_.store(generation << 32, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    work(generation, 0);
    // Wait for the tasks other threads took: spin while they are likely running, then sleep so a
    // worker that lost its core can have this one.
    auto finished = [&] { return done_.load(std::memory_order_seq_cst) == tasks; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lock(mutex_);
      caller_sleeping_.store(true, std::memory_order_seq_cst);
      finished_.wait(lock, finished);
      caller_sleeping_.store(false, std::memory_order_relaxed);
    }
    // Mark the job spent before its fields are rewritten by the next one (see work()).
    ticket_.store((generation << 32) | kSpent, std::memory_order_seq_cst);
    busy_.store(false, std::memory_order_release);
  }

  // Starts workers until there are `count` (ahead of a loop that needs them: starting a thread
  // allocates). Called from the thread that holds the pool or before any loop runs.
  void start_workers(int count) {
    std::lock_guard<std::mutex> lock(start_mutex_);
    while (static_cast<int>(workers_.size()) < count)
      workers_.emplace_back([this, slot = static_cast<int>(workers_.size()) + 1] { worker(slot); });
  }

 private:
  using Call = void (*)(void*, int64_t, int);
  static constexpr uint64_t kSpent = 0xffffffffu;  // a spent job's next-task index
  template <class F>
  static void trampoline(void* context, int64_t task, int slot) {
    (*static_cast<F*>(context))(task, slot);
  }

  // Takes tasks of job `generation` until none is left. The ticket packs (generation, next
  // task), so a claim is one compare-and-swap, which fails once the job is over. A worker may
  // read the job's fields late, when the job is over and the next one is rewriting them; its
  // claim must then fail. It does: a job ends with its ticket marked spent (an index no job
  // reaches) before the next job writes its fields (release), so a worker that read any of those
  // (acquire) sees the spent ticket or a later one at its compare-and-swap. A claim that succeeds
  // therefore ran on this job's fields.
  void work(uint64_t generation, int slot) {
    const Call call = call_.load(std::memory_order_acquire);
    void* const context = context_.load(std::memory_order_acquire);
    const int64_t tasks = tasks_.load(std::memory_order_acquire);
    uint64_t ticket = ticket_.load(std::memory_order_acquire);
    for (;;) {
      if ((ticket >> 32) != (generation & 0xffffffffu)) return;
      const int64_t task = static_cast<int64_t>(ticket & kSpent);
      if (task >= tasks) return;
      if (!ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_seq_cst,
                                         std::memory_order_acquire))
        continue;
      call(context, task, slot);
      if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == tasks &&
          caller_sleeping_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> lock(mutex_);
        finished_.notify_all();
      }
      ticket = ticket_.load(std::memory_order_acquire);
    }
  }

  [[noreturn]] void worker(int slot) {
    uint64_t seen = ticket_.load(std::memory_order_acquire) >> 32;
    for (;;) {
      auto fresh = [&] { return (ticket_.load(std::memory_order_seq_cst) >> 32) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, fresh);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = ticket_.load(std::memory_order_acquire) >> 32;
      if (slot < threads_.load(std::memory_order_acquire)) work(seen, slot);
    }
  }

  std::atomic<bool> busy_{false};
  std::atomic<uint64_t> ticket_{0};
  uint64_t generation_ = 0;  // written by the pool's holder only
  std::atomic<Call> call_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<int64_t> tasks_{0};
  std::atomic<int> threads_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::mutex start_mutex_;
  std::vector<std::thread> workers_;
};

// The pool is never destroyed: its workers sleep through the process's exit. A forked child has
// none of the parent's threads, so it gets a pool of its own (the parent's is left alone).
inline Pool*& pool_pointer() {
  static Pool* pool = [] {
    pthread_atfork(nullptr, nullptr, [] { pool_pointer() = new Pool(); });
    return new Pool();
  }();
  return pool;
}
inline Pool& pool() { return *pool_pointer(); }

// Starts the workers a loop on `threads` threads needs.
inline void prepare(int threads) {
  if (threads > 1) pool().start_workers(threads - 1);
}

// f(task, slot) for task in [0, tasks) on up to `threads` threads (see Pool::run).
template <class F>
void parallel_for(int threads, int64_t tasks, F&& f) {
  if (threads <= 1 || tasks <= 1) {
    for (int64_t i = 0; i < tasks; ++i) f(i, 0);
    return;
  }
  pool().run(threads, tasks, f);
}

}  // namespace threads

}  // namespace nncore
