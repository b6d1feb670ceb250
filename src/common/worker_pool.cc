#include "common/worker_pool.h"

#include <iterator>

namespace rw {

WorkerPool::WorkerPool(std::chrono::milliseconds idle_exit) : idle_exit_(idle_exit) {}

WorkerPool::~WorkerPool() {
  std::list<std::thread> threads;
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // From here no thread ends idle (the wait's condition holds), so the
    // list is no longer changed by the workers.
    threads.swap(threads_);
    ended.swap(ended_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  for (auto& t : ended) t.join();
}

void WorkerPool::submit(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mu_);
  reap_locked();
  jobs_.push_back(std::move(job));
  if (idle_ >= jobs_.size()) {
    cv_.notify_one();
    return;
  }
  threads_.emplace_back();
  auto self = std::prev(threads_.end());
  // It takes mu_ before it looks at the list: `self` is in place by then.
  *self = std::thread([this, self] { work(self); });
}

size_t WorkerPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

void WorkerPool::reap_locked() {
  for (auto& t : ended_) t.join();
  ended_.clear();
}

void WorkerPool::work(std::list<std::thread>::iterator self) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (jobs_.empty() && !stopping_) {
      ++idle_;
      bool woken = cv_.wait_for(lock, idle_exit_, [this] { return !jobs_.empty() || stopping_; });
      --idle_;
      if (!woken) {
        // Idle for too long: hand our handle over to be joined, and end.
        ended_.push_back(std::move(*self));
        threads_.erase(self);
        return;
      }
    }
    if (jobs_.empty()) return;  // stopping, nothing left
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // what it captured goes before the next job
    lock.lock();
  }
}

}  // namespace rw
