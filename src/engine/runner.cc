#include "engine/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <list>
#include <set>
#include <mutex>
#include <optional>

#include "common/build_name.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/files.h"
#include "common/scope_exit.h"
#include "common/worker_pool.h"
#include "engine/local_executor.h"
#include "engine/scheduler.h"
#include "engine/start_gate.h"
#include "engine/ssh_executor.h"
#include "plan/parser.h"
#include "state/events.h"
#include "state/store.h"
#include "systemd/journal.h"
#include "systemd/notify.h"

namespace rw::engine {

using state::RunState;
using state::RunStatus;
using state::StepStatus;
namespace sd = rw::systemd;

namespace {

constexpr int64_t kHeartbeatMs = 10'000;
constexpr int64_t kStatusEveryMs = 250;

/// Splits a byte stream into lines for runner.log and the journal.
class LineSplitter {
 public:
  template <typename F>
  void feed(std::string_view data, F&& line) {
    buf_.append(data);
    size_t start = 0, nl;
    while ((nl = buf_.find('\n', start)) != std::string::npos) {
      line(std::string_view(buf_).substr(start, nl - start));
      start = nl + 1;
    }
    buf_.erase(0, start);
    if (buf_.size() > 65536) {  // a very long line: flush it in pieces
      line(buf_);
      buf_.clear();
    }
  }
  template <typename F>
  void flush(F&& line) {
    if (!buf_.empty()) line(buf_);
    buf_.clear();
  }

 private:
  std::string buf_;
};

std::atomic<PollFn> g_poll{[](::pollfd* f, nfds_t n, int t) { return ::poll(f, n, t); }};

struct Running {
  TaskRef ref;
  std::atomic<bool> cancel{false};
  /// The task's output on its way to its log and runner.log: used by its
  /// job, then (a local process) by the main loop, never by both at once.
  Fd log;
  LineSplitter lines[2];
  std::string prefix;
  /// A local task's process, followed by the main loop once it has exec'd.
  std::unique_ptr<ProcessGroup> proc;
};

struct Finished {
  TaskRef ref;
  TaskOutcome outcome;
};

class Runner {
 public:
  explicit Runner(std::string build) : dir_(state::state_root(), build), fields_{build, "", "", ""} {}
  /// Never leaves a task running on a worker, whatever path ended the run.
  ~Runner() { stop_all_tasks(); }
  int run();

 private:
  Status load_plan();
  /// Whether the plan has `always` stages the run state does not show
  /// completed, in a run that had begun.
  bool unfinished_always_stages() const;
  /// The whole state, merged into state.json (which folds the journal in).
  Status persist();
  /// What changed since the last write, appended to the journal; the whole
  /// state instead once the journal outgrows state.json (so the bytes
  /// written per transition stay O(1) amortized) or nothing is written yet.
  Status persist_changes();
  /// Hands the task to a worker, which starts it once `gate` opens.
  void launch(TaskRef ref, std::shared_ptr<StartGate> gate);
  /// A task's output, to its log and runner.log (line by line).
  void task_output(Running& r, bool is_stderr, std::string_view data);
  /// The task has ended: the end of its output and of its log, and its
  /// outcome queued for drain_finished(). `wake`: from a job (wakes the loop).
  void end_task(Running& r, TaskOutcome out, bool wake);
  /// Local processes handed over by their jobs join the main loop's epoll.
  void adopt_processes();
  /// Reads what the followed processes have ready (`ready`: the epoll set
  /// polled readable), sends due signals, and ends the tasks whose processes
  /// ended.
  void follow_processes(bool ready);
  /// Milliseconds until a followed process needs a look without readiness.
  int64_t processes_wait_ms() const;
  void drain_finished();
  void read_events();
  void apply_event(const state::Event& e);
  void subrun_bookkeeping(const std::vector<TaskRef>& changed);
  /// The sub-run event for a task instance of a `subruns: true` stage.
  std::optional<state::Event> subrun_event(TaskRef ref);
  /// Whether stage `i` has ended for good (no retry or restart_from can run
  /// it again).
  bool stage_final(size_t i) const;
  void heartbeat();
  void log_line(const std::string& prefix, std::string_view line, bool is_stderr, const TaskRef* ref);
  int finish();
  /// The scheduler's progress, then what the command last reported in this
  /// stage (`runwarden event progress`).
  std::string progress_text() const;
  void flush_records();
  /// runner.log -> runner.log.1, and a new runner.log (log_mu_ held).
  void rotate_runner_log();
  static size_t runner_log_max() {
    const char* v = std::getenv("RUNWARDEN_RUNNER_LOG_MAX");
    long long n = v && *v ? std::atoll(v) : 0;
    return n > 0 ? static_cast<size_t>(n) : size_t(64) << 20;
  }
  /// Cancels every running task and waits for it to end.
  void stop_all_tasks();

  state::RunDir dir_;
  sd::LogFields fields_;
  plan::Plan plan_;
  RunState st_;
  std::unique_ptr<Scheduler> sched_;
  std::unique_ptr<ExecutorSet> executors_;
  Fd runner_log_;
  std::mutex log_mu_;
  Fd wake_;  // eventfd: a task finished, or its process was handed over
  Fd procs_;  // epoll: the followed processes' pipes and pidfds
  std::mutex fin_mu_;
  std::vector<Finished> finished_;
  std::vector<Running*> handed_over_;  ///< fin_mu_; processes for the loop
  /// The main loop's own: tasks whose process it follows (their `proc`,
  /// once handed over, is the loop's alone).
  /// Its jobs use the members above: it goes first (stop_all_tasks).
  std::unique_ptr<WorkerPool> workers_;
  /// A task's entry stays put until its job has reported it finished (the
  /// job reads its cancel flag until then).
  std::list<Running> running_;
  std::vector<Running*> followed_;
  size_t events_offset_ = 0;
  state::EventLineSplitter events_lines_;
  /// Scheduling time: wall-clock values that advance monotonically (retry
  /// delays and waits ignore clock changes).
  SteadyWallClock clock_;
  std::set<size_t> closed_stages_;  ///< sub-run stages whose ends are written
  std::set<std::string> log_dirs_;  ///< task log directories made
  std::string reported_progress_;
  size_t runner_log_bytes_ = 0;
  /// $RUNWARDEN_RUNNER_LOG_MAX bytes (default 64 MiB) before runner.log rotates.
  size_t runner_log_max_ = runner_log_max();
  size_t reported_stage_ = 0;
  std::string last_status_;
  /// STATUS= goes to the service manager at most every kStatusEveryMs (each
  /// one costs it a message, a unit lookup and a property change signal);
  /// the newest text is sent when that time comes.
  std::string status_sent_;
  int64_t status_sent_at_ = 0;
  /// Info records of task starts and ends, sent to the journal after the
  /// turn's persist and start, not before them.
  struct PendingRecord {
    systemd::LogFields fields;
    std::string message;
    bool warning = false;
  };
  std::vector<PendingRecord> pending_records_;
  /// The stages and progress as last written (state.json or journal).
  std::vector<state::StageState> persisted_stages_;
  std::string persisted_progress_;
  bool persisted_ = false;
  uint64_t journal_bytes_ = 0;
  uint64_t state_bytes_ = 0;
  bool cancelling_ = false;
  bool stop_without_marker_ = false;
};

bool Runner::unfinished_always_stages() const {
  // Stages never started (no state yet) made nothing to clean up.
  if (st_.stages.size() != plan_.stages.size()) return false;
  bool started = false;
  for (const auto& s : st_.stages) started |= s.status != StepStatus::Scheduled;
  if (!started) return false;
  for (size_t i = 0; i < plan_.stages.size(); ++i)
    if (plan_.stages[i].always && st_.stages[i].status != StepStatus::Completed) return true;
  return false;
}

Status Runner::load_plan() {
  if (!st_.plan_file.empty()) {
    auto p = plan::load_plan(dir_.plan_file());
    if (!p) return p.error();
    plan_ = std::move(p).value();
  } else {
    plan_ = plan::Plan::from_command(st_.runner_command, st_.categorized);
  }
  // `runwarden testbed up`: the testbed made and kept, nothing else.
  if (st_.testbed_only && plan_.testbed)
    std::erase_if(plan_.stages, [](const plan::Stage& s) { return !s.generated || s.name == plan::kTestbedDownStage; });
  // start-run resolved it: --workdir, else the plan's, else its own cwd.
  if (!st_.workdir.empty()) plan_.workdir = st_.workdir;
  // Local paths name files next to the plan file, not in the workdir and
  // not in the runner's cwd (/). Checked by start-run; a file gone since
  // fails its task, with its path.
  if (!st_.plan_dir.empty()) (void)plan::resolve_local_paths(plan_, st_.plan_dir, false);
  // Testbed guests are made by this run with fresh host keys: their keys are
  // learnt into the run's own file, never into the user's known_hosts.
  for (auto& [name, t] : plan_.targets)
    if (t.testbed && t.known_hosts.empty()) t.known_hosts = dir_.file("testbed_known_hosts");
  return {};
}

Status Runner::persist() {
  // Merge into what is on disk: cancel-run and the watcher write the run
  // status too, and a terminal status someone else decided stays.
  auto s = dir_.update([&](RunState& cur) {
    cur.journal_seq = std::max(cur.journal_seq, st_.journal_seq);
    cur.stages = st_.stages;
    cur.progress = st_.progress;
    cur.runner_starts = st_.runner_starts;
    cur.started_at_ms = st_.started_at_ms;
    cur.host = st_.host;
    cur.failure = st_.failure;
    cur.exit_code = st_.exit_code;
    cur.signal = st_.signal;
    if (!state::is_terminal(cur.status)) {
      cur.status = st_.status;
      cur.ended_at_ms = st_.ended_at_ms;
      cur.reason = st_.reason;
      cur.decided_by = st_.decided_by;
    }
    return true;
  });
  if (s) {
    persisted_stages_ = st_.stages;
    persisted_progress_ = st_.progress;
    persisted_ = true;
    journal_bytes_ = 0;
    struct stat sst {};
    state_bytes_ = ::stat(dir_.state_file().c_str(), &sst) == 0 ? static_cast<uint64_t>(sst.st_size) : 0;
  }
  return s;
}

Status Runner::persist_changes() {
  // Amortized: a full write of S bytes once the journal has grown by S.
  constexpr uint64_t kMinJournalBytes = 64 * 1024;
  if (!persisted_ || journal_bytes_ >= std::max(kMinJournalBytes, state_bytes_)) return persist();
  auto delta = state::journal_delta(persisted_stages_, st_.stages);
  if (!delta) return persist();
  if (delta->empty() && st_.progress == persisted_progress_) return {};
  delta->seq = st_.journal_seq + 1;
  delta->progress = st_.progress;
  RW_ASSIGN(uint64_t size, dir_.append_journal(*delta));
  st_.journal_seq = delta->seq;
  journal_bytes_ = size;
  for (const auto& [i, h] : delta->stages) {
    auto tasks = std::move(persisted_stages_[i].tasks);
    persisted_stages_[i] = h;
    persisted_stages_[i].tasks = std::move(tasks);
  }
  for (const auto& t : delta->tasks) persisted_stages_[t.stage].tasks[t.index] = t.state;
  persisted_progress_ = st_.progress;
  return {};
}

void Runner::log_line(const std::string& prefix, std::string_view line, bool, const TaskRef*) {
  // Output goes to runner.log (and the task's log) only: the journal gets
  // the summaries (task started, ended, run end), so journald's rate limit
  // never drops a line and a chatty task does not flood the system log.
  std::string text = prefix + std::string(line) + "\n";
  std::lock_guard<std::mutex> lock(log_mu_);
  if (!runner_log_.valid()) return;
  if (runner_log_bytes_ + text.size() > runner_log_max_) rotate_runner_log();
  if (::write(runner_log_.get(), text.data(), text.size()) > 0) runner_log_bytes_ += text.size();
}

void Runner::rotate_runner_log() {
  // One older part is kept: runner.log.1. Task logs keep everything.
  const std::string path = dir_.runner_log();
  if (::rename(path.c_str(), (path + ".1").c_str()) != 0) return;
  runner_log_ = Fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640));
  runner_log_bytes_ = 0;
  const std::string note = "--- runner.log rotated at " + format_time(now_ms()) + " (cap " +
                           std::to_string(runner_log_max_) + " bytes; the older part is runner.log.1)\n";
  if (runner_log_.valid() && ::write(runner_log_.get(), note.data(), note.size()) > 0)
    runner_log_bytes_ += note.size();
}

void Runner::launch(TaskRef ref, std::shared_ptr<StartGate> gate) {
  running_.emplace_back();
  Running& r = running_.back();
  r.ref = ref;
  const auto& ts = st_.stages[ref.stage].tasks[ref.task];
  const plan::Task* task = &sched_->plan_task(ref);
  const plan::Target* target = &plan_.targets.at(ts.target);
  std::string log_path = dir_.file(ts.log);
  std::string prefix = st_.stages[ref.stage].tasks.size() > 1 ? "[" + ts.id() + "] " : "";
  int attempt = ts.attempts;
  // Once per directory: make_dirs also sets its mode, an inode change that
  // would be written back for every task.
  if (std::string log_dir = log_path.substr(0, log_path.rfind('/')); !log_dirs_.count(log_dir)) {
    if (make_dirs(log_dir)) log_dirs_.insert(std::move(log_dir));
  }
  sd::LogFields lf = fields_;
  lf.stage = st_.stages[ref.stage].name;
  lf.task = ts.name;
  lf.target = ts.target;
  pending_records_.push_back({std::move(lf), "task " + ts.id() + " started (attempt " + std::to_string(attempt) + ")"});

  r.prefix = std::move(prefix);

  if (!workers_) workers_ = std::make_unique<WorkerPool>();
  workers_->submit([this, &r, task, target, log_path, attempt, gate = std::move(gate)] {
    // Made while the task's RUNNING is being synced (a file is no
    // transition); written to once it is durable.
    r.log = Fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640));
    TaskContext ctx;
    ctx.plan = &plan_;
    ctx.task = task;
    ctx.target = target;
    ctx.build = dir_.build();
    ctx.run_dir = dir_.path();
    ctx.workdir = task->workdir.empty() ? plan_.workdir : task->workdir;
    ctx.events_file = dir_.events_file();
    ctx.attempt = attempt;
    ctx.cancel = &r.cancel;
    ctx.output = [this, &r](bool is_stderr, std::string_view data) { task_output(r, is_stderr, data); };
    TaskOutcome out;
    Executor* ex = executors_->find(*task, *target);
    // An executor that holds the command until the gate opens is called
    // now, so that its set-up (a local process up to its exec) overlaps
    // the sync; the others when the gate is open.
    const bool held = ex && ex->starts_at_gate();
    if (held) ctx.gate = gate.get();
    else gate->wait();
    std::string banner = "--- attempt " + std::to_string(attempt) + " at " + format_time(now_ms()) + "\n";
    if (r.log.valid()) (void)!::write(r.log.get(), banner.data(), banner.size());
    if (r.cancel && !held) {
      // Stopped before it could start (the runner is ending).
      out.cancelled = true;
      out.reason = "cancelled";
    } else if (!ex) {
      out.reason = std::string("no executor for a ") + plan::to_string(task->kind) + " task on target " +
                   target->name;
    } else if (auto proc = ex->start(ctx)) {
      // A local process: once it has exec'd, the main loop follows it (its
      // end reaches the loop directly, with no thread in between).
      if (!proc->done()) {
        {
          std::lock_guard<std::mutex> lock(fin_mu_);
          r.proc = std::move(proc);
          handed_over_.push_back(&r);
        }
        uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
        return;
      }
      out = proc->take_outcome();
    } else {
      out = ex->run(ctx);
    }
    end_task(r, std::move(out), true);
  });
}

void Runner::task_output(Running& r, bool is_stderr, std::string_view data) {
  if (r.log.valid()) (void)!::write(r.log.get(), data.data(), data.size());
  r.lines[is_stderr].feed(data, [&](std::string_view l) { log_line(r.prefix, l, is_stderr, &r.ref); });
}

void Runner::end_task(Running& r, TaskOutcome out, bool wake) {
  for (int i = 0; i < 2; ++i) r.lines[i].flush([&](std::string_view l) { log_line(r.prefix, l, i == 1, &r.ref); });
  if (!out.ok) {
    std::string end = "--- " + out.reason + "\n";
    if (r.log.valid()) (void)!::write(r.log.get(), end.data(), end.size());
  }
  r.log.reset();
  {
    std::lock_guard<std::mutex> lock(fin_mu_);
    finished_.push_back({r.ref, std::move(out)});
  }
  if (wake) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
}

void Runner::adopt_processes() {
  std::vector<Running*> handed;
  {
    std::lock_guard<std::mutex> lock(fin_mu_);
    handed.swap(handed_over_);
  }
  for (Running* r : handed) {
    // Each fd's event names its task and which of the three it is (the
    // entry's address is 8-aligned: the slot fits in the low bits).
    if (!r->proc->follow_with(procs_.get(), reinterpret_cast<uintptr_t>(r))) {
      // Not followed by events: wait_ms() makes the loop look at it often.
      sd::log_warning(fields_, errno_message("epoll_ctl (a task's process; looked at every 10 ms)", errno));
    }
    followed_.push_back(r);
  }
}

void Runner::follow_processes(bool ready) {
  epoll_event evs[64];
  while (ready) {
    int n = ::epoll_wait(procs_.get(), evs, 64, 0);
    for (int i = 0; i < n; ++i) {
      // epoll's IN/HUP/ERR bits are poll's.
      auto* r = reinterpret_cast<Running*>(evs[i].data.u64 & ~uint64_t(3));
      r->proc->ready(evs[i].data.u64 & 3, static_cast<short>(evs[i].events));
    }
    ready = n == 64;
  }
  for (size_t i = 0; i < followed_.size();) {
    Running& r = *followed_[i];
    if (r.proc->self_polled()) (void)r.proc->wait_once(0);
    else r.proc->settle();
    if (!r.proc->done()) {
      ++i;
      continue;
    }
    TaskOutcome out = r.proc->take_outcome();
    r.proc.reset();
    end_task(r, std::move(out), false);
    followed_[i] = followed_.back();
    followed_.pop_back();
  }
}

int64_t Runner::processes_wait_ms() const {
  int64_t w = -1;
  for (const Running* r : followed_) {
    int64_t p = r->proc->wait_ms();
    if (p >= 0 && (w < 0 || p < w)) w = p;
  }
  return w;
}

void Runner::drain_finished() {
  std::vector<Finished> done;
  {
    std::lock_guard<std::mutex> lock(fin_mu_);
    done.swap(finished_);
  }
  int64_t now = clock_.now();
  for (auto& f : done) {
    for (auto it = running_.begin(); it != running_.end(); ++it) {
      if (it->ref.stage == f.ref.stage && it->ref.task == f.ref.task) {
        running_.erase(it);
        break;
      }
    }
    const auto& ts = st_.stages[f.ref.stage].tasks[f.ref.task];
    sd::LogFields lf = fields_;
    lf.stage = st_.stages[f.ref.stage].name;
    lf.task = ts.name;
    lf.target = ts.target;
    sched_->finish(f.ref, f.outcome, now);
    if (f.outcome.ok) pending_records_.push_back({std::move(lf), "task " + ts.id() + " completed"});
    else
      pending_records_.push_back(
          {std::move(lf), "task " + ts.id() + " ended: " + f.outcome.reason + " -> " + to_string(ts.status), true});
  }
  // retry: stage stops the siblings of a failed task.
  for (auto ref : sched_->take_aborts()) {
    for (auto& r : running_)
      if (r.ref.stage == ref.stage && r.ref.task == ref.task) r.cancel = true;
  }
}

void Runner::apply_event(const state::Event& e) {
  if (e.type == "progress") {
    // Kept beside the scheduler's own text (stage and task counts), which is
    // recomputed on every turn of the loop and would otherwise replace it.
    reported_progress_ = e.message;
    reported_stage_ = sched_ ? sched_->current_stage() : 0;
    st_.progress = progress_text();
    return;
  }
  state::SubrunState sub;
  if (auto old = dir_.load_subrun(e.key); old.ok()) sub = std::move(old).value();
  // A sub-run that already ended keeps its end: no second message.
  if (state::is_terminal(sub.status) && !sub.key.empty()) return;
  sub.key = e.key;
  sub.status = e.status;
  if (sub.started_at_ms == 0) sub.started_at_ms = now_ms();
  if (state::is_terminal(e.status)) sub.ended_at_ms = now_ms();
  sub.exit_code = e.exit_code;
  sub.message = e.message;
  if (!e.log.empty()) sub.log = e.log;
  if (auto s = dir_.save_subrun(sub); !s)
    sd::log_error(fields_, "cannot record sub-run " + e.key + ": " + s.error().message);
  else
    sd::log_info(fields_, "sub-run " + e.key + ": " + to_string(e.status));
}

void Runner::read_events() {
  Fd fd(::open(dir_.events_file().c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(events_offset_));
    if (n <= 0) break;
    events_offset_ += static_cast<size_t>(n);
    auto got = events_lines_.feed(std::string_view(buf, static_cast<size_t>(n)));
    if (got.dropped)
      sd::log_warning(fields_, "ignored " + std::to_string(got.dropped) + " event line(s) longer than 64 KiB");
    for (const auto& line : got.lines) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto e = state::parse_event_line(line);
      if (!e) {
        sd::log_warning(fields_, "ignored event line: " + e.error().message + ": " + line.substr(0, 200));
        continue;
      }
      apply_event(*e);
    }
  }
}

std::optional<state::Event> Runner::subrun_event(TaskRef ref) {
  const auto& ts = st_.stages[ref.stage].tasks[ref.task];
  state::Event e;
  e.type = "subrun";
  e.key = ts.name + (plan_.stages[ref.stage].tasks.size() > 1 || ts.target != plan::Plan::kController
                         ? "." + ts.target
                         : "");
  if (auto v = validate_name(e.key, "sub-run key", kMaxKey); !v) {
    // The plan's names make valid keys; never drop a message silently.
    sd::log_error(fields_, "cannot record sub-run " + e.key + ": " + v.error().message);
    return std::nullopt;
  }
  switch (ts.status) {
    case StepStatus::Running: e.status = RunStatus::Running; break;
    case StepStatus::Completed: e.status = RunStatus::Completed; break;
    case StepStatus::Failed: e.status = RunStatus::Failed; break;
    default: return std::nullopt;
  }
  e.exit_code = ts.exit_code;
  e.message = ts.reason;
  e.log = dir_.file(ts.log);
  return e;
}

bool Runner::stage_final(size_t i) const {
  const auto status = st_.stages[i].status;
  if (status == StepStatus::Failed || status == StepStatus::Cancelled) return true;
  if (status != StepStatus::Completed) return false;
  // A completed stage runs again if a later stage that may still fail
  // restarts from it (or from before it).
  for (size_t j = i + 1; j < plan_.stages.size(); ++j) {
    const auto& from = plan_.stages[j].restart_from;
    if (from.empty() || st_.stages[j].status == StepStatus::Completed || st_.stages[j].status == StepStatus::Failed)
      continue;
    for (size_t k = 0; k <= i; ++k)
      if (plan_.stages[k].name == from) return false;
  }
  return true;
}

void Runner::subrun_bookkeeping(const std::vector<TaskRef>& changed) {
  // Stages with `subruns: true`: every task instance is a sub-run. It is
  // RUNNING from its first start; its end is written once, when its stage
  // ended for good (retries and restarts done), so the message is the
  // sub-run's final outcome, never a first attempt's.
  for (auto ref : changed) {
    if (!plan_.stages[ref.stage].subruns) continue;
    auto e = subrun_event(ref);
    if (!e || e->status != RunStatus::Running) continue;
    // A retry of a sub-run is still the same sub-run.
    if (auto old = dir_.load_subrun(e->key); old.ok() && old->status == RunStatus::Running) continue;
    apply_event(*e);
  }
  for (size_t i = 0; i < plan_.stages.size(); ++i) {
    if (!plan_.stages[i].subruns || closed_stages_.count(i) || !stage_final(i)) continue;
    closed_stages_.insert(i);
    for (size_t t = 0; t < st_.stages[i].tasks.size(); ++t)
      if (auto e = subrun_event({i, t}); e && e->status != RunStatus::Running) apply_event(*e);
  }
}

void Runner::heartbeat() {
  // Liveness for the unit's WatchdogSec=: a main loop that stops turning
  // (a deadlock, a hung call) gets the runner restarted, and resumed.
  sd::notify_watchdog();
}

int Runner::run() {
  if (!dir_.exists()) {
    sd::log_error(fields_, "no run directory " + dir_.path() + ": start runs with start-run");
    return kRunnerNotResumable;
  }
  auto loaded = dir_.load();
  if (!loaded) {
    sd::log_error(fields_, "cannot read the run state: " + loaded.error().message);
    return kRunnerNotResumable;
  }
  st_ = std::move(loaded).value();
  // Cancelled while no runner ran (cancel-run between a crash and the
  // restart): nothing more of the plan runs, but `always` stages it had
  // not finished (a testbed's teardown) still do, once.
  const bool cancelled = path_exists(dir_.cancelled_marker()) || st_.status == RunStatus::Cancelled;
  if (state::is_terminal(st_.status) && !cancelled) {
    sd::notify_ready(std::string("run already ") + to_string(st_.status));
    sd::log_info(fields_, std::string("run already ended: ") + to_string(st_.status));
    return kRunnerOk;
  }
  if (auto s = load_plan(); !s) {
    if (cancelled) {
      sd::notify_ready("cancelled");
      return kRunnerOk;
    }
    sd::log_error(fields_, "cannot load the plan: " + s.error().message);
    return kRunnerNotResumable;
  }
  if (cancelled && !unfinished_always_stages()) {
    sd::notify_ready("cancelled");
    return kRunnerOk;
  }
  executors_ = default_executors(plan_);

  // SIGTERM/SIGINT arrive through a signalfd; children get them unblocked.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Fd sigfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  wake_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  procs_ = Fd(::epoll_create1(EPOLL_CLOEXEC));

  int64_t now = clock_.now();
  st_.runner_starts += 1;
  if (st_.started_at_ms == 0) st_.started_at_ms = now;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  st_.host = host;
  if (st_.stages.empty() || !Scheduler::matches(plan_, st_.stages)) st_.stages = Scheduler::initial_stages(plan_);
  sched_ = std::make_unique<Scheduler>(plan_, st_);
  if (st_.runner_starts > 1) {
    sd::log_warning(fields_, "resuming after a runner restart (start " + std::to_string(st_.runner_starts) + ")");
    if (!sched_->recover(now) && !cancelled) {
      st_.progress = "interrupted; not resumable";
      (void)persist();
      sd::log_error(fields_, "a task was interrupted and has no retries left: the run cannot resume");
      return kRunnerNotResumable;
    }
  }
  if (cancelled) {
    sd::log_warning(fields_, "cancelled while no runner ran: running the plan's remaining 'always' stages");
    cancelling_ = true;
    (void)sched_->cancel_all();
  }
  st_.status = RunStatus::Running;  // on disk, a CANCELLED already written stays
  st_.decided_by = "runner";
  st_.progress = sched_->progress();
  if (auto s = persist(); !s) {
    sd::log_error(fields_, "cannot write the run state: " + s.error().message);
    return kRunnerError;
  }
  runner_log_ = Fd(::open(dir_.runner_log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (struct stat lst{}; runner_log_.valid() && ::fstat(runner_log_.get(), &lst) == 0)
    runner_log_bytes_ = static_cast<size_t>(lst.st_size);
  (void)touch_marker(dir_.events_file());
  Fd ino(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  // Without inotify (fs.inotify.max_user_instances reached) events are read
  // once a second instead: late, never lost.
  const bool poll_events = !ino.valid();
  if (poll_events) sd::log_warning(fields_, errno_message("inotify (reading events every second)", errno));
  else ::inotify_add_watch(ino.get(), dir_.events_file().c_str(), IN_MODIFY | IN_CLOSE_WRITE);
  heartbeat();
  sd::notify_ready(st_.progress);
  sd::log_info(fields_, "run started: " + std::to_string(plan_.stages.size()) + " stage(s), plan " + plan_.source);
  read_events();

  // Pings at half the watchdog interval the manager gave us (at most kHeartbeatMs).
  const int64_t heartbeat_ms = std::max<int64_t>(100, std::min<int64_t>(kHeartbeatMs, sd::watchdog_ms() / 2));
  int64_t next_heartbeat = now + heartbeat_ms;
  for (;;) {
    now = clock_.now();
    auto starts = sched_->next(now);
    auto changed = sched_->take_changed();
    st_.progress = progress_text();
    // The tasks to start get ready on their workers meanwhile, and start
    // when the gate opens, after the persist below (on any way out of this
    // turn: no worker waits for good).
    auto gate = std::make_shared<StartGate>();
    ScopeExit open_gate([&] { gate->open(); });
    for (auto ref : starts) launch(ref, gate);
    if (!changed.empty() || st_.progress != last_status_) {
      // Persist before the transitions take effect (tasks start after this).
      if (auto s = persist_changes(); !s) sd::log_error(fields_, "cannot write the run state: " + s.error().message);
      subrun_bookkeeping(changed);
    }
    gate->open();
    flush_records();
    last_status_ = st_.progress;
    if (last_status_ != status_sent_ && clock_.now() >= status_sent_at_ + kStatusEveryMs) {
      sd::notify_status(last_status_);
      status_sent_ = last_status_;
      status_sent_at_ = clock_.now();
    }
    if (sched_->done() && running_.empty()) break;

    int64_t wake_at = poll_events ? std::min(next_heartbeat, clock_.now() + 1000) : next_heartbeat;
    if (int64_t w = sched_->next_wakeup(); w > 0 && w < wake_at) wake_at = w;
    if (last_status_ != status_sent_) wake_at = std::min(wake_at, status_sent_at_ + kStatusEveryMs);
    int64_t timeout_ms = std::max<int64_t>(0, wake_at - clock_.now());
    if (int64_t p = processes_wait_ms(); p >= 0) timeout_ms = std::min(timeout_ms, p);
    pollfd fds[4] = {{sigfd.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}, {ino.get(), POLLIN, 0},
                     {procs_.get(), POLLIN, 0}};
    int r = g_poll.load()(fds, 4, static_cast<int>(timeout_ms));
    if (r < 0 && errno != EINTR) {
      // Nothing can be waited for any more: stop the tasks (the run resumes
      // after systemd restarts the runner; they count as interrupted).
      flush_records();
      sd::log_error(fields_, errno_message("the runner's main loop cannot poll", errno) + "; stopping its tasks");
      stop_all_tasks();
      return kRunnerError;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
        if (cancelling_) continue;
        cancelling_ = true;
        stop_without_marker_ = !path_exists(dir_.cancelled_marker());
        sd::log_warning(fields_, std::string("stopping on ") + strsignal(static_cast<int>(si.ssi_signo)) +
                                     (stop_without_marker_ ? "" : " (cancel-run)") + ": aborting running tasks");
        sd::notify_stopping("aborting");
        executors_->stop();
        for (auto ref : sched_->cancel_all()) {
          for (auto& run : running_)
            if (run.ref.stage == ref.stage && run.ref.task == ref.task) run.cancel = true;
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof v);
      adopt_processes();
    }
    // Local processes: their output, their ends, and the signals due (a
    // cancel set above, a timeout).
    follow_processes(fds[3].revents & POLLIN);
    drain_finished();
    if (fds[2].revents & POLLIN) {
      char buf[4096];
      while (::read(ino.get(), buf, sizeof buf) > 0) {
      }
      read_events();
    }
    if (poll_events) read_events();
    if (clock_.now() >= next_heartbeat) {
      heartbeat();
      next_heartbeat = clock_.now() + heartbeat_ms;
    }
  }
  read_events();
  subrun_bookkeeping({});
  return finish();
}

void Runner::flush_records() {
  for (const auto& r : pending_records_) {
    if (r.warning) sd::log_warning(r.fields, r.message);
    else sd::log_info(r.fields, r.message);
  }
  pending_records_.clear();
}

std::string Runner::progress_text() const {
  std::string p = sched_->progress();
  if (!reported_progress_.empty() && reported_stage_ == sched_->current_stage()) p += " | " + reported_progress_;
  return p;
}

void Runner::stop_all_tasks() {
  if (running_.empty()) return;
  for (auto& r : running_) r.cancel = true;
  if (executors_) executors_->stop();
  workers_.reset();  // waits for every job
  // The processes the loop followed: all are told to stop at once, then
  // waited for (the grace runs for all of them together).
  adopt_processes();
  for (Running* r : followed_) r->proc->settle();
  for (Running* r : followed_) {
    while (!r->proc->done() && r->proc->wait_once(200)) {
    }
    TaskOutcome out = r->proc->done() ? r->proc->take_outcome() : TaskOutcome{};
    r->proc.reset();  // kills what is left of the group
    end_task(*r, std::move(out), false);
  }
  followed_.clear();
  running_.clear();
}

int Runner::finish() {
  flush_records();
  int64_t now = clock_.now();
  if (cancelling_) {
    sched_->finish_cancel(now);
    st_.progress = "cancelled";
    if (!stop_without_marker_) {
      st_.status = RunStatus::Cancelled;
      st_.decided_by = "cancel-run";
      st_.ended_at_ms = now;
    }
    // Without cancel-run's marker this was a plain stop: no terminal state
    // here, the watcher reports TERMINATED.
    (void)persist();
    sd::log_warning(fields_, stop_without_marker_ ? "stopped; tasks aborted" : "run cancelled; tasks aborted");
    return kRunnerOk;
  }
  st_.status = sched_->result();
  st_.ended_at_ms = now;
  st_.decided_by = "runner";
  // The run's exit code: the failing task's, or the single task's.
  const state::TaskState* key_task = nullptr;
  for (const auto& stage : st_.stages)
    for (const auto& t : stage.tasks)
      if (!key_task && t.status == StepStatus::Failed) {
        key_task = &t;
        st_.failure = state::FailureInfo{stage.name, t.name, t.target, t.log};
      }
  if (!key_task && st_.stages.size() == 1 && st_.stages[0].tasks.size() == 1) key_task = &st_.stages[0].tasks[0];
  if (key_task) {
    st_.exit_code = key_task->exit_code;
    st_.signal = key_task->signal;
    if (st_.status == RunStatus::Failed) st_.reason = key_task->reason;
  } else if (st_.status == RunStatus::Completed) {
    st_.exit_code = 0;
  }
  st_.progress = std::string(to_string(st_.status)) + " after " + format_duration(Millis(now - st_.started_at_ms));
  // Sub-runs the command never closed end with the run, without a message.
  for (const auto& key : dir_.subrun_keys()) {
    auto sub = dir_.load_subrun(key);
    if (sub.ok() && !state::is_terminal(sub->status)) {
      sub->status = RunStatus::Terminated;
      sub->ended_at_ms = now;
      sub->message = "the run ended before this sub-run reported its end";
      (void)dir_.save_subrun(*sub);
    }
  }
  if (auto s = persist(); !s) {
    sd::log_error(fields_, "cannot write the final state: " + s.error().message);
    return kRunnerError;
  }
  sd::notify_stopping(st_.progress);
  sd::log_info(fields_, "run " + std::string(to_string(st_.status)) +
                            (st_.exit_code ? " (exit code " + std::to_string(*st_.exit_code) + ")" : ""));
  return kRunnerOk;
}

}  // namespace

std::unique_ptr<ExecutorSet> default_executors(const plan::Plan& plan) {
  return std::make_unique<StandardExecutors>(plan);
}

void set_runner_poll_for_testing(PollFn fn) { g_poll = fn; }

int run_runner(const std::string& build) {
  Runner r(build);
  return r.run();
}

}  // namespace rw::engine
