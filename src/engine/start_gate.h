#pragma once
// StartGate: opened once the transitions that start tasks are durable.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "common/fd.h"

namespace rw::engine {

/// The tasks a turn of the runner starts get ready on their workers while
/// their RUNNING transitions are synced, and take effect only when the gate
/// opens. A worker either waits for it (`wait`) or hands it the pipe a
/// process it made is held on before exec (`hold`), so that the process is
/// set up while the sync runs and released at once when it ends.
class StartGate {
 public:
  StartGate() = default;
  StartGate(const StartGate&) = delete;
  StartGate& operator=(const StartGate&) = delete;
  ~StartGate() { open(); }

  /// Opens the gate: every held process gets its byte, except those whose
  /// task was cancelled meanwhile, whose pipe is closed unwritten (they end
  /// without exec). Idempotent.
  void open();
  void wait();
  /// `go`: the write end of a held process's pipe. Returns `go` back
  /// (unused) when the gate is open already: the caller releases it.
  Fd hold(Fd go, const std::atomic<bool>* cancel);

  /// Releases a held process: writes its byte, or (cancelled) only closes.
  static void release(Fd go, const std::atomic<bool>* cancel);

 private:
  struct Held {
    Fd go;
    const std::atomic<bool>* cancel;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::vector<Held> held_;
};

}  // namespace rw::engine
