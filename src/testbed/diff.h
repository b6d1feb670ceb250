#pragma once
// Drift: a testbed as the plan declares it against what its host holds.
// Objects are compared by the fields runwarden sets (never raw XML), so
// libvirt's own additions (UUIDs it fills in, addresses, defaults) are not
// drift.

#include <string>
#include <vector>

#include "common/result.h"
#include "testbed/spec.h"
#include "testbed/virt.h"

namespace rw::testbed {

struct FieldDrift {
  std::string field;
  std::string want;  ///< from the plan
  std::string have;  ///< on the host
};

struct Drift {
  std::string kind;  ///< network | guest | pool | volume
  std::string name;  ///< the plan's name (a volume's file name)
  /// in-sync | missing | extra | changed | conflicting (the name is held by
  /// an object that is not this testbed's; `holder` says whose)
  std::string status;
  std::string holder;
  std::vector<FieldDrift> fields;  ///< for changed
};

/// Every object the plan's testbed `tb` wants, and every object tagged with
/// its name, compared. Sorted by kind (networks, guests, pool, volumes),
/// then name.
Result<std::vector<Drift>> diff(const Virt& host, const Testbed& tb);

/// The fields compared, as found in a network's or a domain's XML (for
/// tests): network: mode, bridge, subnet, mtu, reservations; guest: cpus,
/// memory, nics ("mac@network, ..."), disk backing is not compared.
std::vector<FieldDrift> network_fields(const std::string& want_xml, const std::string& have_xml);
std::vector<FieldDrift> guest_fields(const std::string& want_xml, const std::string& have_xml);

}  // namespace rw::testbed
