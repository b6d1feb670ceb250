#pragma once
// The two HTML pages of `runwarden serve`: self-contained (no CDN, no
// external fonts; controllers are often offline), filled in the browser
// from the API's event streams (or, with ?poll, by polling it every 2 s).

#include <string>

namespace rw::web {

/// Every run: state, stage progress bar, sub-runs, duration, who decided
/// the end, whether the message was delivered.
std::string runs_page();
/// One run (`build` is a valid build name): stages, tasks with attempts and
/// durations, sub-runs, and the log tail, following live.
std::string run_page(const std::string& build);

}  // namespace rw::web
