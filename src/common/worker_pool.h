#pragma once
// WorkerPool: threads kept between blocking jobs. A thread started and
// joined per job costs a clone, a fresh stack and a join on the caller's
// path every time; a run of many short tasks pays that per task.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace rw {

class WorkerPool {
 public:
  /// Threads idle for `idle_exit` end (a long run keeps no stacks it no
  /// longer needs).
  explicit WorkerPool(std::chrono::milliseconds idle_exit = std::chrono::seconds(10));
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  /// Waits for every job submitted, queued ones included.
  ~WorkerPool();

  /// Runs `job` on an idle thread, or on a new one when every thread is
  /// busy: a job never waits for another (jobs block as long as a task runs).
  void submit(std::function<void()> job);
  /// Threads alive now, busy or idle.
  size_t threads() const;

 private:
  void work(std::list<std::thread>::iterator self);
  /// Joins threads that ended idle (mu_ held; they no longer take it).
  void reap_locked();

  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::vector<std::thread> ended_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace rw
