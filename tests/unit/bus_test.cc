// The service-manager client against a fake manager on a unix socket (a
// direct connection, as to the manager's private socket): one GetAll for a
// unit's state, and a start that waits for its own job and collects the
// jobs of the units it pulled in, ignoring other runs' jobs.

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>
#include <mutex>
#include <string>
#include <thread>

#include "systemd/bus.h"

namespace rw::systemd {
namespace {

constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";

/// Answers GetAll, Subscribe, EnqueueUnitJob, StartUnit and StopUnit like
/// systemd does, on one accepted connection. After a start's reply it sends
/// JobRemoved for another run's unit, then for the started unit's own job
/// and for `pulled_result` of watcher@x, in the order `pulled_first` says
/// (the two are not ordered: either may end first).
class FakeManager {
 public:
  std::string pulled_result = "done";
  bool pulled_first = false;
  /// false: a manager older than systemd 243, without EnqueueUnitJob.
  bool has_enqueue = true;
  /// false: EnqueueUnitJob's transaction has no job for watcher@x (a
  /// runner@ unit without the Wants=).
  bool pulls_watcher = true;

  FakeManager() {
    dir_ = std::filesystem::temp_directory_path() / ("rw-bus-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "private").string();
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    ::unlink(path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    server_ = std::thread([this] { serve(); });
    ::setenv("RUNWARDEN_BUS_ADDRESS", ("unix:path=" + path_).c_str(), 1);
  }
  ~FakeManager() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    server_.join();
    ::close(listen_fd_);
    ::unsetenv("RUNWARDEN_BUS_ADDRESS");
    std::filesystem::remove_all(dir_);
  }
  std::string seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  static int on_message(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<FakeManager*>(userdata);
    uint8_t type = 0;
    sd_bus_message_get_type(m, &type);
    if (type != SD_BUS_MESSAGE_METHOD_CALL) return 0;
    const std::string member = sd_bus_message_get_member(m);
    const std::string path = sd_bus_message_get_path(m);
    sd_bus* bus = sd_bus_message_get_bus(m);
    if (member == "GetAll") {
      const char* iface = nullptr;
      sd_bus_message_read(m, "s", &iface);
      self->note("GetAll(" + std::string(iface) + ") " + path);
      sd_bus_message* reply = nullptr;
      sd_bus_message_new_method_return(m, &reply);
      sd_bus_message_open_container(reply, 'a', "{sv}");
      sd_bus_message_append(reply, "{sv}", "Names", "as", 1, "runner@x.service");
      sd_bus_message_append(reply, "{sv}", "ActiveState", "s", "activating");
      sd_bus_message_append(reply, "{sv}", "SubState", "s", "auto-restart");
      sd_bus_message_append(reply, "{sv}", "Job", "(uo)", 7, "/org/freedesktop/systemd1/job/7");
      sd_bus_message_append(reply, "{sv}", "StateChangeTimestamp", "t", uint64_t(1234567000));
      sd_bus_message_append(reply, "{sv}", "Result", "s", "exit-code");
      sd_bus_message_append(reply, "{sv}", "MainPID", "u", 4321);
      sd_bus_message_close_container(reply);
      sd_bus_send(bus, reply, nullptr);
      sd_bus_message_unref(reply);
      return 1;
    }
    if (member == "GetUnit") {
      const char* unit = nullptr;
      sd_bus_message_read(m, "s", &unit);
      self->note("GetUnit(" + std::string(unit) + ")");
      // Only runner@x is loaded.
      if (std::string(unit) == "runner@x.service")
        sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/unit/runner_40x_2eservice");
      else
        sd_bus_reply_method_errorf(m, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded.", unit);
      return 1;
    }
    if (member == "Subscribe") {
      self->note("Subscribe");
      sd_bus_reply_method_return(m, "");
      return 1;
    }
    if (member == "EnqueueUnitJob") {
      const char *unit = nullptr, *type = nullptr, *mode = nullptr;
      sd_bus_message_read(m, "sss", &unit, &type, &mode);
      self->note(member + "(" + unit + "," + type + "," + mode + ")");
      if (!self->has_enqueue) {
        sd_bus_reply_method_errorf(m, SD_BUS_ERROR_UNKNOWN_METHOD, "Unknown method EnqueueUnitJob");
        return 1;
      }
      sd_bus_message* reply = nullptr;
      sd_bus_message_new_method_return(m, &reply);
      sd_bus_message_append(reply, "uosos", 9u, "/org/freedesktop/systemd1/job/9", unit,
                            "/org/freedesktop/systemd1/unit/runner_40x_2eservice", "start");
      sd_bus_message_open_container(reply, 'a', "(uosos)");
      // The anchor job is listed among the affected ones too: it must be
      // waited for once, not twice.
      sd_bus_message_append(reply, "(uosos)", 9u, "/org/freedesktop/systemd1/job/9", unit,
                            "/org/freedesktop/systemd1/unit/runner_40x_2eservice", "start");
      sd_bus_message_append(reply, "(uosos)", 11u, "/org/freedesktop/systemd1/job/11", "network-online.target",
                            "/org/freedesktop/systemd1/unit/network_2donline_2etarget", "start");
      if (self->pulls_watcher)
        sd_bus_message_append(reply, "(uosos)", 10u, "/org/freedesktop/systemd1/job/10", "watcher@x.service",
                              "/org/freedesktop/systemd1/unit/watcher_40x_2eservice", "start");
      sd_bus_message_close_container(reply);
      sd_bus_send(bus, reply, nullptr);
      sd_bus_message_unref(reply);
      self->emit_jobs(bus, unit, self->pulls_watcher);
      return 1;
    }
    if (member == "StartUnit" || member == "StopUnit") {
      const char *unit = nullptr, *mode = nullptr;
      sd_bus_message_read(m, "ss", &unit, &mode);
      self->note(member + "(" + unit + "," + mode + ")");
      sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/job/9");
      self->emit_jobs(bus, unit, member == "StartUnit");
      return 1;
    }
    return 0;
  }

  void emit_jobs(sd_bus* bus, const char* unit, bool with_watcher) {
    sd_bus_emit_signal(bus, kManagerPath, kManagerIface, "JobRemoved", "uoss", 8u, "/org/freedesktop/systemd1/job/8",
                       "watcher@other.service", "failed");
    auto watcher = [&] {
      if (with_watcher)
        sd_bus_emit_signal(bus, kManagerPath, kManagerIface, "JobRemoved", "uoss", 10u,
                           "/org/freedesktop/systemd1/job/10", "watcher@x.service", pulled_result.c_str());
    };
    if (pulled_first) watcher();
    sd_bus_emit_signal(bus, kManagerPath, kManagerIface, "JobRemoved", "uoss", 9u, "/org/freedesktop/systemd1/job/9",
                       unit, "done");
    sd_bus_flush(bus);
    if (!pulled_first && with_watcher) {
      // The runner's job ends first and the watcher's a while later.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      watcher();
    }
  }

  void note(const std::string& s) {
    std::lock_guard<std::mutex> l(mu_);
    seen_ += s + "\n";
  }

  void serve() {
    while (!stop_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      sd_bus* s = nullptr;
      sd_id128_t id;
      sd_id128_randomize(&id);
      sd_bus_new(&s);
      sd_bus_set_fd(s, fd, fd);
      sd_bus_set_server(s, 1, id);
      sd_bus_set_anonymous(s, 1);
      sd_bus_slot* filter = nullptr;
      sd_bus_add_filter(s, &filter, on_message, this);
      sd_bus_start(s);
      while (!stop_) {
        int r = sd_bus_process(s, nullptr);
        if (r < 0) break;
        if (r == 0) sd_bus_wait(s, 50'000);
      }
      sd_bus_slot_unref(filter);
      sd_bus_flush_close_unref(s);
    }
  }

  std::filesystem::path dir_;
  std::string path_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread server_;
  std::mutex mu_;
  std::string seen_;
};

TEST(Bus, UnitStateIsOneGetAllOfEveryInterfaceOnTheEscapedPath) {
  FakeManager fake;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  EXPECT_FALSE(bus->is_bus_client());
  auto st = bus->unit_state("runner@x.service");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->active, "activating");
  EXPECT_EQ(st->sub, "auto-restart");
  EXPECT_EQ(st->result, "exit-code");
  EXPECT_EQ(st->main_pid, 4321u);
  EXPECT_EQ(st->job, 7u);
  EXPECT_EQ(st->state_change_ms, 1234567);
  EXPECT_EQ(fake.seen(), "GetAll() /org/freedesktop/systemd1/unit/runner_40x_2eservice\n");
}

TEST(Bus, AUnitThatIsNotLoadedIsInactiveAndIsNotLoadedToSaySo) {
  FakeManager fake;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto st = bus->unit_state_if_loaded("watcher@y.service");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->active, "inactive");
  EXPECT_EQ(st->job, 0u);
  EXPECT_TRUE(st->gone());
  EXPECT_FALSE(st->running());
  EXPECT_EQ(fake.seen(), "GetUnit(watcher@y.service)\n") << "no GetAll: that would load the unit";
}

TEST(Bus, ALoadedUnitsStateIsReadWhole) {
  FakeManager fake;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto st = bus->unit_state_if_loaded("runner@x.service");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->active, "activating");
  EXPECT_EQ(st->job, 7u);
  EXPECT_EQ(fake.seen(),
            "GetUnit(runner@x.service)\nGetAll() /org/freedesktop/systemd1/unit/runner_40x_2eservice\n");
}

TEST(Bus, StartWaitsForItsJobAndThePulledUnitsJobWhenThatEndsLater) {
  FakeManager fake;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto jobs = bus->start_unit("runner@x.service", {"watcher@x.service"}, Millis(10'000));
  ASSERT_TRUE(jobs.ok()) << jobs.error().message;
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0], std::make_pair(std::string("runner@x.service"), std::string("done")));
  EXPECT_EQ((*jobs)[1], std::make_pair(std::string("watcher@x.service"), std::string("done")));
  EXPECT_EQ(fake.seen(), "Subscribe\nEnqueueUnitJob(runner@x.service,start,replace)\n");
}

TEST(Bus, StartReportsThePulledUnitsJobWhenThatEndsFirst) {
  FakeManager fake;
  fake.pulled_first = true;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto jobs = bus->start_unit("runner@x.service", {"watcher@x.service"}, Millis(10'000));
  ASSERT_TRUE(jobs.ok()) << jobs.error().message;
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0], std::make_pair(std::string("runner@x.service"), std::string("done")));
  EXPECT_EQ((*jobs)[1], std::make_pair(std::string("watcher@x.service"), std::string("done")));
}

TEST(Bus, AFailedPulledJobIsReportedInEitherOrder) {
  for (bool first : {false, true}) {
    FakeManager fake;
    fake.pulled_result = "failed";
    fake.pulled_first = first;
    auto bus = Bus::connect();
    ASSERT_TRUE(bus.ok()) << bus.error().message;
    auto jobs = bus->start_unit("runner@x.service", {"watcher@x.service"}, Millis(10'000));
    ASSERT_TRUE(jobs.ok()) << jobs.error().message;
    ASSERT_EQ(jobs->size(), 2u);
    EXPECT_EQ((*jobs)[1], std::make_pair(std::string("watcher@x.service"), std::string("failed")));
  }
}

TEST(Bus, AStartThatPulledNothingReportsItsOwnJobOnly) {
  FakeManager fake;
  fake.pulls_watcher = false;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto jobs = bus->start_unit("runner@x.service", {"watcher@x.service"}, Millis(10'000));
  ASSERT_TRUE(jobs.ok()) << jobs.error().message;
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0], std::make_pair(std::string("runner@x.service"), std::string("done")));
}

TEST(Bus, WithoutEnqueueUnitJobStartFallsBackToStartUnit) {
  FakeManager fake;
  fake.has_enqueue = false;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto jobs = bus->start_unit("runner@x.service", {"watcher@x.service"}, Millis(10'000));
  ASSERT_TRUE(jobs.ok()) << jobs.error().message;
  ASSERT_GE(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0], std::make_pair(std::string("runner@x.service"), std::string("done")));
  EXPECT_EQ(fake.seen(),
            "Subscribe\nEnqueueUnitJob(runner@x.service,start,replace)\nStartUnit(runner@x.service,replace)\n");
}

TEST(Bus, StopReturnsItsOwnJobsResult) {
  FakeManager fake;
  auto bus = Bus::connect();
  ASSERT_TRUE(bus.ok()) << bus.error().message;
  auto r = bus->stop_unit("runner@x.service", Millis(10'000));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "done");
}

TEST(UnitState, AQueuedJobMeansNotGone) {
  UnitState u;
  u.active = "inactive";
  u.sub = "dead";
  EXPECT_TRUE(u.gone());
  u.job = 12;
  EXPECT_FALSE(u.gone()) << "a start job is queued: the unit is about to run";
  u.job = 0;
  u.active = "activating";
  u.sub = "auto-restart";
  EXPECT_FALSE(u.gone());
}

}  // namespace
}  // namespace rw::systemd
