#pragma once
// Names of what a testbed creates on a host, and the ownership tag.
//
// libvirt objects get readable names (rw-<build>-<object>); kernel interface
// names (bridges, VXLAN links) are at most 15 characters, so they are a short
// prefix plus a hash of the same identity: two testbeds never share one, and
// a resumed runner finds the one it made.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rw::testbed {

/// XML namespace of the ownership tag in libvirt <metadata>.
inline constexpr const char* kOwnerNs = "https://runwarden.org/xmlns/testbed/1";

/// Who made an object: the testbed (the run's build name) and the object's
/// name in the plan.
struct Owner {
  std::string testbed;
  std::string object;
  /// The run that made it (its start time), so a later run of the same
  /// build name tells a leftover from its own objects. Empty: not recorded.
  std::string run = "";
};

/// FNV-1a of `s` from `seed`: stable across runs and builds, for names,
/// MACs and UUIDs derived from an identity.
uint64_t stable_hash(std::string_view s, uint64_t seed = 1469598103934665603ull);

/// "rw-<testbed>-<object>": the libvirt name of a testbed object.
std::string libvirt_name(const Owner& o);

/// Kernel interface name for `kind` ('b' bridge, 'x' VXLAN, 't' tap):
/// "rw" + kind + 12 hex digits of a hash of the owner, 15 characters.
std::string interface_name(char kind, const Owner& o);

/// The <metadata> child element that tags an object as ours.
std::string owner_element(const Owner& o);

/// The owner tag found in an object's XML description, if any.
std::optional<Owner> owner_of(std::string_view xml);

/// `s` with &, <, >, ' and " escaped for XML text and attributes.
std::string xml_escape(std::string_view s);

/// The value of attribute `attr` of the first element named `element` in
/// `xml` (quotes ' or "), unescaped; nullopt if absent.
std::optional<std::string> xml_attr(std::string_view xml, std::string_view element, std::string_view attr);

/// The text of the first <element ...>text</element> in `xml`, as written
/// (not unescaped); "" when absent or empty.
std::string xml_text(std::string_view xml, std::string_view element);

}  // namespace rw::testbed
