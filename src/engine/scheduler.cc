#include "engine/scheduler.h"

#include <algorithm>

namespace rw::engine {

using state::StepStatus;

namespace {

std::string log_name(const std::string& stage, const std::string& task, const std::string& target) {
  return "tasks/" + stage + "/" + task + (target.empty() ? "" : "@" + target) + ".log";
}

}  // namespace

std::vector<state::StageState> Scheduler::initial_stages(const plan::Plan& plan) {
  std::vector<state::StageState> out;
  for (const auto& s : plan.stages) {
    state::StageState st;
    st.name = s.name;
    for (const auto& t : s.tasks) {
      std::vector<std::string> on = t.on.empty() ? std::vector<std::string>{plan::Plan::kController} : t.on;
      for (const auto& target : on) {
        state::TaskState ts;
        ts.name = t.name;
        ts.target = target;
        ts.log = log_name(s.name, t.name, target);
        st.tasks.push_back(ts);
      }
    }
    out.push_back(std::move(st));
  }
  return out;
}

bool Scheduler::matches(const plan::Plan& plan, const std::vector<state::StageState>& stages) {
  auto fresh = initial_stages(plan);
  if (fresh.size() != stages.size()) return false;
  for (size_t i = 0; i < fresh.size(); ++i) {
    if (fresh[i].name != stages[i].name || fresh[i].tasks.size() != stages[i].tasks.size()) return false;
    for (size_t j = 0; j < fresh[i].tasks.size(); ++j) {
      if (fresh[i].tasks[j].name != stages[i].tasks[j].name ||
          fresh[i].tasks[j].target != stages[i].tasks[j].target)
        return false;
    }
  }
  return true;
}

Scheduler::Scheduler(const plan::Plan& plan, state::RunState& state) : plan_(plan), st_(state) {
  for (const auto& s : plan.stages) {
    std::vector<size_t> idx;
    for (size_t t = 0; t < s.tasks.size(); ++t) {
      size_t n = s.tasks[t].on.empty() ? 1 : s.tasks[t].on.size();
      for (size_t k = 0; k < n; ++k) idx.push_back(t);
    }
    task_index_.push_back(std::move(idx));
  }
  retry_pending_.assign(plan.stages.size(), false);
  // A resumed run whose stages had failed was running its `always` stages.
  for (size_t i = 0; i < st_.stages.size() && i < plan.stages.size(); ++i) {
    if (plan.stages[i].always) continue;
    if (st_.stages[i].status != StepStatus::Failed && st_.stages[i].status != StepStatus::Cancelled) continue;
    if (size_t a = next_always(i); a < plan.stages.size()) {
      finally_ = true;
      current_ = a;
    }
    break;
  }
}

const plan::Task& Scheduler::plan_task(TaskRef r) const {
  return plan_.stages[r.stage].tasks[task_index_[r.stage][r.task]];
}

int Scheduler::task_retries(TaskRef r) const {
  const auto& t = plan_task(r);
  return t.retries.value_or(plan_.stages[r.stage].retries);
}

bool Scheduler::recover(int64_t now) {
  bool resumable = true;
  for (size_t s = 0; s < st_.stages.size(); ++s) {
    auto& stage = st_.stages[s];
    for (size_t t = 0; t < stage.tasks.size(); ++t) {
      auto& task = stage.tasks[t];
      if (task.status == StepStatus::Error) {
        // Interrupted while a `retry: stage` stopped the siblings of this
        // task: finish that decision now.
        if (stage.attempts <= plan_.stages[s].retries) {
          retry_pending_[s] = true;
        } else {
          task.status = StepStatus::Failed;
          changed({s, t});
        }
        continue;
      }
      if (task.status != StepStatus::Running && task.status != StepStatus::Aborting) continue;
      task.status = StepStatus::Error;
      task.reason = "interrupted: the runner stopped while this task was running";
      task.ended_at_ms = now;
      if (task.attempts <= task_retries({s, t})) {
        task.status = StepStatus::Scheduled;
        task.retry_at_ms = now + plan_.stages[s].retry_delay.count();
      } else {
        resumable = false;
      }
      changed({s, t});
    }
    if (stage.status == StepStatus::Aborting) stage.status = StepStatus::Running;
  }
  return resumable;
}

void Scheduler::start_stage(size_t i, int64_t now) {
  auto& stage = st_.stages[i];
  stage.status = StepStatus::Running;
  stage.attempts += 1;
  stage.started_at_ms = now;
  stage.ended_at_ms = 0;
}

void Scheduler::reset_stage(size_t i, int64_t at) {
  auto& stage = st_.stages[i];
  stage.status = StepStatus::Scheduled;
  stage.ended_at_ms = 0;
  for (size_t t = 0; t < stage.tasks.size(); ++t) {
    auto& task = stage.tasks[t];
    task.status = StepStatus::Scheduled;
    task.attempts = 0;
    task.exit_code.reset();
    task.signal.reset();
    task.retry_at_ms = at;
    changed({i, t});
  }
}

size_t Scheduler::next_always(size_t after) const {
  for (size_t i = after + 1; i < plan_.stages.size(); ++i)
    if (plan_.stages[i].always) return i;
  return plan_.stages.size();
}

bool Scheduler::pending_always() const {
  if (!finally_ && !cancelling_) return false;
  for (size_t i = 0; i < plan_.stages.size(); ++i)
    if (plan_.stages[i].always && st_.stages[i].status != StepStatus::Completed &&
        st_.stages[i].status != StepStatus::Failed)
      return true;
  return false;
}

void Scheduler::begin_finally(int64_t now) {
  finally_ = true;
  current_ = plan_.stages.size();
  for (size_t i = plan_.stages.size(); i-- > 0;) {
    if (!plan_.stages[i].always) continue;
    auto& stage = st_.stages[i];
    if (stage.status == StepStatus::Completed || stage.status == StepStatus::Failed) continue;
    reset_stage(i, now);
    current_ = i;
  }
}

std::vector<TaskRef> Scheduler::next(int64_t now) {
  std::vector<TaskRef> starts;
  if (cancelling_ && !finally_) {
    if (any_running()) return starts;
    finish_cancel(now);
    begin_finally(now);
  }
  while (current_ < st_.stages.size()) {
    if (finally_ && !plan_.stages[current_].always) {
      ++current_;
      continue;
    }
    auto& stage = st_.stages[current_];
    if (stage.status == StepStatus::Completed) {
      ++current_;
      continue;
    }
    if (stage.status == StepStatus::Failed || stage.status == StepStatus::Cancelled) return starts;
    if (stage.status == StepStatus::Scheduled) {
      bool waiting = false;
      for (const auto& t : stage.tasks) waiting |= t.retry_at_ms > now;
      if (waiting) return starts;  // stage retry delay
      start_stage(current_, now);
    }
    settle_stage(now);
    if (stage.status != StepStatus::Running) continue;  // settled: look again

    const auto& ps = plan_.stages[current_];
    int running = 0;
    for (const auto& t : stage.tasks) running += t.status == StepStatus::Running || t.status == StepStatus::Aborting;
    if (retry_pending_[current_]) return starts;
    for (size_t t = 0; t < stage.tasks.size(); ++t) {
      auto& task = stage.tasks[t];
      if (ps.parallel > 0 && running >= ps.parallel) break;
      if (task.status != StepStatus::Scheduled || task.retry_at_ms > now) continue;
      task.status = StepStatus::Running;
      task.attempts += 1;
      task.started_at_ms = now;
      task.ended_at_ms = 0;
      task.reason.clear();
      starts.push_back({current_, t});
      changed({current_, t});
      ++running;
    }
    return starts;
  }
  return starts;
}

void Scheduler::settle_stage(int64_t now) {
  auto& stage = st_.stages[current_];
  const auto& ps = plan_.stages[current_];
  bool all_done = true, any_failed = false, any_active = false;
  for (const auto& t : stage.tasks) {
    all_done &= state::is_done(t.status);
    any_failed |= t.status == StepStatus::Failed || t.status == StepStatus::Error;
    any_active |= t.status == StepStatus::Running || t.status == StepStatus::Aborting;
  }
  if (retry_pending_[current_]) {
    if (any_active) return;
    // retry: stage; every sibling has stopped: run the whole stage again.
    retry_pending_[current_] = false;
    reset_stage(current_, now + ps.retry_delay.count());
    return;
  }
  if (!all_done) return;
  if (!any_failed) {
    stage.status = StepStatus::Completed;
    stage.ended_at_ms = now;
    ++current_;
    return;
  }
  if (!ps.restart_from.empty() && stage.attempts <= std::max(1, ps.retries)) {
    size_t from = current_;
    for (size_t i = 0; i < plan_.stages.size(); ++i)
      if (plan_.stages[i].name == ps.restart_from) from = i;
    for (size_t i = from; i <= current_; ++i) reset_stage(i, now + ps.retry_delay.count());
    current_ = from;
    return;
  }
  stage.status = StepStatus::Failed;
  stage.ended_at_ms = now;
  // Stages after a failure do not run, except those that always do.
  if (size_t a = next_always(current_); a < plan_.stages.size() && !plan_.stages[current_].always) {
    for (size_t i = current_ + 1; i < a; ++i) {
      for (auto& t : st_.stages[i].tasks) {
        t.status = StepStatus::Cancelled;
        t.reason = "not run: stage " + stage.name + " failed";
      }
      st_.stages[i].status = StepStatus::Cancelled;
    }
    finally_ = true;
    current_ = a;
  }
}

void Scheduler::finish(TaskRef r, const TaskOutcome& o, int64_t now) {
  auto& task = st_.stages[r.stage].tasks[r.task];
  const auto& ps = plan_.stages[r.stage];
  bool was_aborting = task.status == StepStatus::Aborting;
  task.ended_at_ms = now;
  task.exit_code = o.exit_code;
  task.signal = o.signal;
  task.reason = o.reason;
  changed(r);
  if (o.ok) {
    task.status = StepStatus::Completed;
    return;
  }
  if (was_aborting) {
    task.status = StepStatus::Cancelled;
    return;
  }
  task.status = StepStatus::Error;
  if (cancelling_ && !finally_) {
    task.status = StepStatus::Cancelled;
    return;
  }
  if (ps.retry == plan::RetryMode::Stage) {
    if (st_.stages[r.stage].attempts <= ps.retries) {
      retry_pending_[r.stage] = true;
      auto& stage = st_.stages[r.stage];
      for (size_t t = 0; t < stage.tasks.size(); ++t) {
        if (stage.tasks[t].status == StepStatus::Running) {
          stage.tasks[t].status = StepStatus::Aborting;
          aborts_.push_back({r.stage, t});
          changed({r.stage, t});
        }
      }
    } else {
      task.status = StepStatus::Failed;
    }
    return;
  }
  if (task.attempts <= task_retries(r)) {
    task.status = StepStatus::Scheduled;
    task.retry_at_ms = now + ps.retry_delay.count();
  } else {
    task.status = StepStatus::Failed;
  }
}

std::vector<TaskRef> Scheduler::take_aborts() { return std::exchange(aborts_, {}); }
std::vector<TaskRef> Scheduler::take_changed() { return std::exchange(changed_, {}); }

std::vector<TaskRef> Scheduler::cancel_all() {
  cancelling_ = true;
  std::vector<TaskRef> running;
  for (size_t s = 0; s < st_.stages.size(); ++s) {
    // Once the `always` stages run (after a failure), a cancel lets them end.
    if (finally_ && plan_.stages[s].always) continue;
    auto& stage = st_.stages[s];
    for (size_t t = 0; t < stage.tasks.size(); ++t) {
      auto& task = stage.tasks[t];
      if (task.status == StepStatus::Running || task.status == StepStatus::Aborting) {
        task.status = StepStatus::Aborting;
        running.push_back({s, t});
      } else if (task.status == StepStatus::Scheduled || task.status == StepStatus::Error) {
        task.status = StepStatus::Cancelled;
      } else {
        continue;
      }
      changed({s, t});
    }
    if (stage.status == StepStatus::Running) stage.status = StepStatus::Aborting;
    else if (stage.status == StepStatus::Scheduled) stage.status = StepStatus::Cancelled;
  }
  return running;
}

void Scheduler::finish_cancel(int64_t now) {
  for (auto& stage : st_.stages) {
    for (auto& t : stage.tasks)
      if (t.status == StepStatus::Aborting) t.status = StepStatus::Cancelled;
    if (stage.status == StepStatus::Aborting) {
      stage.status = StepStatus::Cancelled;
      stage.ended_at_ms = now;
    }
  }
}

bool Scheduler::any_running() const {
  for (const auto& s : st_.stages)
    for (const auto& t : s.tasks)
      if (t.status == StepStatus::Running || t.status == StepStatus::Aborting) return true;
  return false;
}

bool Scheduler::done() const {
  // After a cancel, the `always` stages still run once nothing else does.
  if (cancelling_) return !any_running() && !pending_always();
  for (const auto& s : st_.stages) {
    if (s.status == StepStatus::Failed) return !pending_always();
    if (s.status != StepStatus::Completed) return false;
  }
  return true;
}

state::RunStatus Scheduler::result() const {
  if (cancelling_) return state::RunStatus::Cancelled;
  for (const auto& s : st_.stages)
    if (s.status != StepStatus::Completed) return state::RunStatus::Failed;
  return state::RunStatus::Completed;
}

int64_t Scheduler::next_wakeup() const {
  int64_t at = 0;
  if (current_ >= st_.stages.size()) return 0;
  for (const auto& t : st_.stages[current_].tasks) {
    if (t.status == StepStatus::Scheduled && t.retry_at_ms > 0 && (at == 0 || t.retry_at_ms < at))
      at = t.retry_at_ms;
  }
  return at;
}

std::string Scheduler::progress() const {
  size_t n = st_.stages.size();
  if (n == 0) return "no stages";
  size_t i = std::min(current_, n - 1);
  const auto& stage = st_.stages[i];
  int done = 0, running = 0, retrying = 0, failed = 0;
  for (const auto& t : stage.tasks) {
    done += t.status == StepStatus::Completed;
    running += t.status == StepStatus::Running;
    retrying += t.status == StepStatus::Scheduled && t.attempts > 0;
    failed += t.status == StepStatus::Failed;
  }
  std::string out = "stage " + std::to_string(i + 1) + "/" + std::to_string(n) + " " + stage.name + ": " +
                    std::to_string(done) + "/" + std::to_string(stage.tasks.size()) + " done";
  if (running) out += ", " + std::to_string(running) + " running";
  if (retrying) out += ", " + std::to_string(retrying) + " retrying";
  if (failed) out += ", " + std::to_string(failed) + " failed";
  return out;
}

}  // namespace rw::engine
