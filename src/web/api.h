#pragma once
// The read-only HTTP API, pages and metrics of `runwarden serve`, as a pure
// function of a request and the state directory: no sockets here (server.cc
// has them), so every answer can be tested without a server.

#include <map>
#include <string>

namespace rw::web {

struct Request {
  std::string method;                        ///< GET, HEAD, ...
  std::string path;                          ///< decoded, without the query
  std::map<std::string, std::string> query;  ///< decoded arguments
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Non-empty: a Server-Sent Events stream instead of `body`, of every run
  /// ("*") or of one run (its build name); see snapshot().
  std::string stream;
};

/// Longest path and query the server accepts (longer: 414).
constexpr size_t kMaxPath = 1024;
constexpr size_t kMaxQueryArgs = 16;

/// Answers one request from the runs under `root` ($RUNWARDEN_STATE_DIR):
///   GET /api/v1/runs[?state=S[,S]&prefix=P&limit=N&offset=N]
///   GET /api/v1/runs/BUILD            GET /api/v1/runs/BUILD/history
///   GET /api/v1/runs/BUILD/log[?tail=N]
///   GET /metrics                       GET /  GET /runs/BUILD   (pages)
///   GET /api/v1/events                 GET /api/v1/runs/BUILD/events (SSE)
/// 400 a bad build name or query, 404 no such path or run, 405 a method
/// other than GET or HEAD, 414 a path too long. Never serves anything but
/// what these name: no file by path, no secret (webhook URL, keys).
Response handle(const std::string& root, const Request& r);

/// What an event stream sends when it changes: for "*" the list of runs
/// (as /api/v1/runs?limit=1000), for a build {"run": ..., "log": last 100
/// lines of runner.log}.
std::string snapshot(const std::string& root, const std::string& stream);

/// Prometheus text exposition of the runs under `root`.
std::string metrics(const std::string& root);

}  // namespace rw::web
