// The plan's testbed: section. See docs/testbed.md.
#include "plan/parser_impl.h"

namespace rw::plan::detail {

void Parser::parse_testbed(const Entry& e) { problem(e.key_node.Mark(), "testbed: not yet read"); }

}  // namespace rw::plan::detail
