#include "engine/start_gate.h"

#include <cerrno>

namespace rw::engine {

void StartGate::release(Fd go, const std::atomic<bool>* cancel) {
  if (cancel && cancel->load()) return;  // closed unwritten: the process gives up
  const char one = 1;
  while (::write(go.get(), &one, 1) < 0 && errno == EINTR) {
  }
}

void StartGate::open() {
  std::vector<Held> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_) return;
    open_ = true;
    held.swap(held_);
  }
  for (auto& h : held) release(std::move(h.go), h.cancel);
  cv_.notify_all();
}

void StartGate::wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return open_; });
}

Fd StartGate::hold(Fd go, const std::atomic<bool>* cancel) {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_) return go;
  held_.push_back({std::move(go), cancel});
  return Fd();
}

}  // namespace rw::engine
