// sd-bus keeps signals that arrive during a synchronous call in its queue,
// where poll() on the connection's socket cannot see them. The watcher runs
// systemd::process_queued() before each poll so such a signal (the runner's
// death) is acted on at once. A real sd-bus client and server over a
// socketpair, no service manager.

#include <poll.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#include <atomic>
#include <gtest/gtest.h>
#include <thread>

#include "systemd/bus.h"

namespace rw::systemd {
namespace {

constexpr const char* kPath = "/org/example/Unit";
constexpr const char* kIface = "org.example.Unit";

int on_ping(sd_bus_message* m, void*, sd_bus_error*) {
  // The signal goes out before the reply, as the manager's PropertiesChanged
  // can overtake the answer to a Get.
  sd_bus_emit_signal(sd_bus_message_get_bus(m), kPath, kIface, "Changed", "");
  return sd_bus_reply_method_return(m, "");
}

const sd_bus_vtable kVtable[] = {SD_BUS_VTABLE_START(0),
                                 SD_BUS_METHOD("Ping", "", "", on_ping, SD_BUS_VTABLE_UNPRIVILEGED),
                                 SD_BUS_SIGNAL("Changed", "", 0), SD_BUS_VTABLE_END};

int on_changed(sd_bus_message*, void* userdata, sd_bus_error*) {
  *static_cast<bool*>(userdata) = true;
  return 0;
}

TEST(BusQueue, ASignalReadDuringASynchronousCallIsDispatchedByProcessQueued) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);

  std::atomic<bool> stop{false};
  std::thread server([&] {
    sd_bus* s = nullptr;
    sd_id128_t id;
    sd_id128_randomize(&id);
    sd_bus_new(&s);
    sd_bus_set_fd(s, fds[0], fds[0]);
    sd_bus_set_server(s, 1, id);
    sd_bus_set_anonymous(s, 1);
    sd_bus_slot* slot = nullptr;
    sd_bus_add_object_vtable(s, &slot, kPath, kIface, kVtable, nullptr);
    sd_bus_start(s);
    while (!stop.load()) {
      int r = sd_bus_process(s, nullptr);
      if (r < 0) break;
      if (r == 0) sd_bus_wait(s, 50'000);
    }
    sd_bus_slot_unref(slot);
    sd_bus_flush_close_unref(s);
  });

  sd_bus* c = nullptr;
  ASSERT_GE(sd_bus_new(&c), 0);
  sd_bus_set_fd(c, fds[1], fds[1]);
  sd_bus_set_anonymous(c, 1);
  ASSERT_GE(sd_bus_start(c), 0);
  bool changed = false;
  sd_bus_slot* match = nullptr;
  ASSERT_GE(sd_bus_match_signal(c, &match, nullptr, kPath, kIface, "Changed", on_changed, &changed), 0);

  sd_bus_error e = SD_BUS_ERROR_NULL;
  ASSERT_GE(sd_bus_call_method(c, nullptr, kPath, kIface, "Ping", &e, nullptr, ""), 0) << e.message;
  sd_bus_error_free(&e);
  EXPECT_FALSE(changed) << "a synchronous call does not dispatch signals";

  // What the old watcher did: poll the socket. The signal is already in
  // sd-bus's queue, so the socket has nothing to say.
  pollfd p{sd_bus_get_fd(c), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 200), 0) << "the socket is quiet: poll alone would wait forever";
  EXPECT_FALSE(changed);

  EXPECT_GE(process_queued(c), 0);
  EXPECT_TRUE(changed) << "process_queued dispatches the queued signal";

  stop = true;
  server.join();
  sd_bus_slot_unref(match);
  sd_bus_flush_close_unref(c);
}

}  // namespace
}  // namespace rw::systemd
