#pragma once
// testbed.json in a run directory: the guests the run's testbed brought up
// (name, libvirt domain, addresses) and whether its teardown removed them,
// as the runner last recorded it. Readers that must not talk to libvirt
// (the web view, /metrics, `runwarden status`) show this; `runwarden
// testbed status` asks the host itself.

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace rw::state {

/// Its name in a run directory (RunDir::testbed_file()).
inline constexpr const char* kTestbedRecordFile = "testbed.json";

struct GuestRecord {
  std::string name;                    ///< the plan's name: web-1
  std::string libvirt_name;            ///< the domain: rw-BUILD-web-1
  std::vector<std::string> addresses;  ///< one per NIC, in NIC order
  std::string state;                   ///< "up" or "removed"
};

struct TestbedRecord {
  std::string uri;  ///< the libvirt connection the guests live on
  std::vector<GuestRecord> guests;
  int64_t updated_at_ms = 0;
};

std::string to_json(const TestbedRecord& r);
Result<TestbedRecord> testbed_record_from_json(const std::string& text);

/// Records `guests` as up: replaces those of the same name, keeps others.
Status record_guests_up(const std::string& path, const std::string& uri, const std::vector<GuestRecord>& guests);

/// Marks every recorded guest removed (a `down` removed the testbed).
/// Nothing recorded: nothing written.
Status record_guests_removed(const std::string& path);

/// Guests recorded in state "up" in `r`.
size_t guests_up(const TestbedRecord& r);

}  // namespace rw::state
