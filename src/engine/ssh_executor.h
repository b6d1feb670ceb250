#pragma once
// Executors for targets reached over SSH (hosts, and guests through them),
// plus the local forms of script/wait_for. One session per target, reused by
// every task on it for the whole run.

#include <map>
#include <memory>
#include <mutex>

#include "engine/executor.h"
#include "engine/testbed_executor.h"
#include "engine/local_executor.h"
#include "ssh/session.h"

namespace rw::engine {

/// Connects targets on first use (their jump hosts first) and keeps the
/// sessions; a dead session is replaced on the next use. Thread-safe.
class SessionPool {
 public:
  explicit SessionPool(const plan::Plan& plan) : plan_(plan) {}
  ~SessionPool();
  /// `cancel` stops this call's connect; it is not kept: sessions outlive
  /// the task that opened them.
  Result<ssh::Session*> get(const std::string& target, const std::atomic<bool>* cancel);
  /// Makes every connect in progress or to come give up (the run is ending).
  void stop() { stopping_ = true; }
  /// Forgets `target`'s session: its guest was reverted or powered off, so
  /// the next use connects afresh.
  void drop(const std::string& target);

 private:
  const plan::Plan& plan_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  /// Connecting a guest holds its jump host's entry; one mutex per target
  /// keeps slow connects to one host from blocking others.
  struct Entry {
    std::mutex mu;
    std::unique_ptr<ssh::Session> session;
  };
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  /// Moves `e`'s session to retired_ (the caller holds e.mu).
  void retire(Entry& e);
  std::vector<std::unique_ptr<ssh::Session>> retired_;  ///< dead sessions still used as jump hosts
};

ssh::Endpoint endpoint_for(const plan::Target& t);

class RemoteExecutor : public Executor {
 public:
  explicit RemoteExecutor(SessionPool& pool) : pool_(pool) {}
  TaskOutcome run(const TaskContext& ctx) override;

 private:
  SessionPool& pool_;
};

/// Local script and wait_for tasks on the controller.
class LocalExtrasExecutor : public Executor {
 public:
  TaskOutcome run(const TaskContext& ctx) override;
};

class StandardExecutors : public ExecutorSet {
 public:
  explicit StandardExecutors(const plan::Plan& plan)
      : pool_(plan),
        remote_(pool_),
        testbed_(
            this, [this](const std::string& t) { pool_.drop(t); },
            [this](const std::string& t, const std::atomic<bool>* cancel) { return pool_.get(t, cancel); }) {}
  Executor* find(const plan::Task& task, const plan::Target& target) override;
  void stop() override { pool_.stop(); }

 private:
  SessionPool pool_;
  LocalExecutor local_;
  LocalExtrasExecutor local_extras_;
  RemoteExecutor remote_;
  TestbedExecutor testbed_;
};

}  // namespace rw::engine
