#pragma once
// Posting a run's (or a sub-run's) message: payload recorded in
// notification.json first, posted.marker written right after the "ok".

#include <string>

#include "common/result.h"
#include "notify/message.h"
#include "state/store.h"

namespace rw::watch {

/// The message for a run, or for one of its sub-runs (key non-empty).
notify::MessageInput message_for(const state::RunDir& dir, const state::RunState& run, const std::string& subrun);

enum class DeliverBy { Watcher, Resend };

/// Delivers the message of `subrun` ("" = the run) once: nothing if its
/// marker exists. With `payload` empty, renders it from the current state;
/// otherwise sends that payload (resend). Returns whether it was delivered.
/// One attempt: its bounded retries, then "sent" or "failed" in the record.
/// Holds the run's delivery lock throughout; a resend that finds it held
/// fails at once with code 3.
Result<bool> deliver(const state::RunDir& dir, const std::string& subrun, const std::string& payload,
                     DeliverBy who);

}  // namespace rw::watch
