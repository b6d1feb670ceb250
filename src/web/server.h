#pragma once
// `runwarden serve`: the read-only web view, JSON API and metrics over HTTP
// (libmicrohttpd), on a socket systemd passes (runwarden-web.socket) or one
// it opens itself.

#include <string>

namespace rw::web {

/// Serves until SIGTERM or SIGINT. `listen` ("HOST:PORT", IPv4 or [IPv6])
/// is used when systemd passed no socket; port 0 picks a free one. Prints
/// "listening on HOST:PORT" once ready. Returns the exit code.
int serve(const std::string& listen);

}  // namespace rw::web
