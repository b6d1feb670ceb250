#include "testbed/names.h"

#include <cstdint>
#include <cstdio>

namespace rw::testbed {
namespace {

std::string xml_unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    static const std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}};
    bool matched = false;
    for (const auto& [name, ch] : kEntities) {
      if (s.substr(i, name.size()) == name) {
        out += ch;
        i += name.size() - 1;
        matched = true;
        break;
      }
    }
    if (!matched) out += '&';
  }
  return out;
}

}  // namespace

uint64_t stable_hash(std::string_view s, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string libvirt_name(const Owner& o) { return "rw-" + o.testbed + "-" + o.object; }

std::string interface_name(char kind, const Owner& o) {
  // The separator cannot occur in either part (names follow the one name rule).
  uint64_t h = stable_hash(o.testbed + "/" + o.object) & 0xffffffffffffull;
  char buf[16];
  std::snprintf(buf, sizeof buf, "rw%c%012llx", kind, static_cast<unsigned long long>(h));
  return buf;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string owner_element(const Owner& o) {
  return std::string("<rw:owner xmlns:rw=\"") + kOwnerNs + "\" testbed=\"" + xml_escape(o.testbed) + "\" object=\"" +
         xml_escape(o.object) + (o.run.empty() ? "" : "\" run=\"" + xml_escape(o.run)) + "\"/>";
}

std::optional<std::string> xml_attr(std::string_view xml, std::string_view element, std::string_view attr) {
  const std::string open = "<" + std::string(element);
  for (size_t at = xml.find(open); at != std::string_view::npos; at = xml.find(open, at + 1)) {
    size_t after = at + open.size();
    if (after >= xml.size() || !(xml[after] == ' ' || xml[after] == '\n' || xml[after] == '\t' ||
                                 xml[after] == '/' || xml[after] == '>'))
      continue;  // a longer element name
    size_t end = xml.find('>', after);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view tag = xml.substr(after, end - after);
    for (size_t p = 0; p < tag.size();) {
      size_t eq = tag.find('=', p);
      if (eq == std::string_view::npos || eq + 1 >= tag.size()) break;
      size_t name_start = tag.find_last_of(" \t\n", eq);
      name_start = name_start == std::string_view::npos ? 0 : name_start + 1;
      char q = tag[eq + 1];
      if (q != '\'' && q != '"') break;
      size_t close = tag.find(q, eq + 2);
      if (close == std::string_view::npos) break;
      if (tag.substr(name_start, eq - name_start) == attr) return xml_unescape(tag.substr(eq + 2, close - eq - 2));
      p = close + 1;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::string xml_text(std::string_view xml, std::string_view element) {
  const std::string open = "<" + std::string(element);
  for (size_t a = xml.find(open); a != std::string_view::npos; a = xml.find(open, a + 1)) {
    const char next = a + open.size() < xml.size() ? xml[a + open.size()] : '\0';
    if (next != '>' && next != ' ') continue;
    size_t gt = xml.find('>', a);
    if (gt == std::string_view::npos || xml[gt - 1] == '/') return "";
    size_t lt = xml.find('<', gt);
    return lt == std::string_view::npos ? "" : std::string(xml.substr(gt + 1, lt - gt - 1));
  }
  return "";
}

std::optional<Owner> owner_of(std::string_view xml) {
  auto ns = xml_attr(xml, "rw:owner", "xmlns:rw");
  if (!ns || *ns != kOwnerNs) return std::nullopt;
  auto tb = xml_attr(xml, "rw:owner", "testbed");
  auto obj = xml_attr(xml, "rw:owner", "object");
  if (!tb || !obj) return std::nullopt;
  return Owner{*tb, *obj, xml_attr(xml, "rw:owner", "run").value_or("")};
}

}  // namespace rw::testbed
