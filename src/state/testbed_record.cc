#include "state/testbed_record.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/files.h"

namespace rw::state {
namespace {

using nlohmann::json;

/// The record at `path`, or an empty one when there is none yet.
Result<TestbedRecord> load_or_empty(const std::string& path) {
  if (!path_exists(path)) return TestbedRecord{};
  RW_ASSIGN(std::string text, read_file(path));
  return testbed_record_from_json(text);
}

Status save(const std::string& path, TestbedRecord r) {
  r.updated_at_ms = now_ms();
  // Rebuilt by the next up or down: no fsync needed for a view.
  return write_file_atomic(path, to_json(r), 0644, false);
}

}  // namespace

std::string to_json(const TestbedRecord& r) {
  json guests = json::array();
  for (const auto& g : r.guests)
    guests.push_back({{"name", g.name}, {"libvirt_name", g.libvirt_name}, {"addresses", g.addresses}, {"state", g.state}});
  return json{{"uri", r.uri}, {"guests", guests}, {"updated_at_ms", r.updated_at_ms}}.dump(2) + "\n";
}

Result<TestbedRecord> testbed_record_from_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return err("testbed record: not a JSON object");
  TestbedRecord r;
  try {
    r.uri = j.value("uri", "");
    r.updated_at_ms = j.value("updated_at_ms", int64_t{0});
    for (const auto& g : j.value("guests", json::array())) {
      GuestRecord gr;
      gr.name = g.at("name").get<std::string>();
      gr.libvirt_name = g.value("libvirt_name", "");
      gr.addresses = g.value("addresses", std::vector<std::string>{});
      gr.state = g.value("state", "up");
      r.guests.push_back(std::move(gr));
    }
  } catch (const json::exception& e) {
    return err(std::string("testbed record: ") + e.what());
  }
  return r;
}

Status record_guests_up(const std::string& path, const std::string& uri, const std::vector<GuestRecord>& guests) {
  RW_ASSIGN(TestbedRecord r, load_or_empty(path));
  r.uri = uri;
  for (const auto& g : guests) {
    GuestRecord up = g;
    up.state = "up";
    auto it = std::find_if(r.guests.begin(), r.guests.end(), [&](const GuestRecord& x) { return x.name == g.name; });
    if (it != r.guests.end()) *it = std::move(up);
    else r.guests.push_back(std::move(up));
  }
  return save(path, std::move(r));
}

Status record_guests_removed(const std::string& path) {
  RW_ASSIGN(TestbedRecord r, load_or_empty(path));
  if (r.guests.empty()) return {};
  for (auto& g : r.guests) g.state = "removed";
  return save(path, std::move(r));
}

size_t guests_up(const TestbedRecord& r) {
  return static_cast<size_t>(std::count_if(r.guests.begin(), r.guests.end(), [](const GuestRecord& g) { return g.state == "up"; }));
}

}  // namespace rw::state
