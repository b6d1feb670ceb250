#pragma once
// The run directory on disk: $STATE/runs/<build>/. The only code that reads
// and writes state JSON.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "state/run_state.h"
#include "state/testbed_record.h"

namespace rw::state {

/// $RUNWARDEN_STATE_DIR, or /var/lib/runwarden.
std::string state_root();

std::string to_json(const RunState& s);
Result<RunState> run_state_from_json(const std::string& text);
std::string to_json(const SubrunState& s);
std::string to_json(const NotificationRecord& n);
Result<SubrunState> subrun_state_from_json(const std::string& text);

class RunDir {
 public:
  RunDir(std::string root, std::string build);

  const std::string& build() const { return build_; }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string state_file() const { return file("state.json"); }
  /// Entries appended by the runner between full writes of state.json: JSON
  /// lines, then zeros up to the file's allocated size (written in place, so
  /// an append does not change the file's size). The entries end at the
  /// first NUL; a compaction truncates it to 0.
  std::string journal_file() const { return file("journal.jsonl"); }
  std::string plan_file() const { return file("plan.yaml"); }
  std::string template_log() const { return file("template.log"); }
  std::string runner_log() const { return file("runner.log"); }
  std::string events_file() const { return file("events.jsonl"); }
  std::string posted_marker() const { return file("posted.marker"); }
  std::string cancelled_marker() const { return file("cancelled.marker"); }
  std::string notification_file() const { return file("notification.json"); }
  std::string subruns_dir() const { return file("subruns"); }
  std::string subrun_dir(const std::string& key) const { return subruns_dir() + "/" + key; }
  std::string tasks_dir() const { return file("tasks"); }
  std::string testbed_file() const { return file(kTestbedRecordFile); }

  bool exists() const;
  /// state.json with the journal's newer entries applied.
  Result<RunState> load() const;
  Status save(const RunState& s) const;
  /// Appends `e` to the journal under state.lock and syncs it before
  /// returning (a transition is durable before it takes effect); returns the
  /// bytes the journal's entries take. Bytes written: the entry's, whatever
  /// the plan's size. The entry is written over the zeros that pre-size the
  /// file (grown by kJournalChunk when full), so the sync writes data only,
  /// not the inode. The file is kept open between appends; an entry is
  /// written where the entries end even if someone else compacted the
  /// journal or a crash left a torn entry since.
  Result<uint64_t> append_journal(const JournalEntry& e) const;
  /// The journal's file identity and the length of its entries: a key for
  /// caches of the loaded state (an entry written in place leaves the size
  /// alone, and an mtime may not tell two writes in one clock tick apart).
  std::string journal_identity() const;
  static constexpr uint64_t kJournalChunk = 32 * 1024;
  /// Read-modify-write under an exclusive lock on state.lock, so the runner,
  /// the watcher and cancel-run never lose each other's writes. `change`
  /// returns false to leave the file as it is. When the file is still the
  /// one this RunDir wrote last (same inode, size and times), the state it
  /// wrote is used instead of parsing the file again. A write folds the
  /// journal into state.json and empties it.
  Status update(const std::function<bool(RunState&)>& change) const;

  Result<SubrunState> load_subrun(const std::string& key) const;
  Status save_subrun(const SubrunState& s) const;
  /// Marker and notification record of the run (key "") or of a sub-run.
  std::string posted_marker_for(const std::string& subrun) const;
  std::string notification_file_for(const std::string& subrun) const;
  Result<NotificationRecord> load_notification(const std::string& subrun) const;
  /// `durable` false for the "pending" record written just before a post:
  /// a watcher restarted after a crash renders it again.
  Status save_notification(const NotificationRecord& n, bool durable = true) const;

  /// The lock held across "marker exists?", the post and the marker write,
  /// so a watcher and `notify --resend` never both post one message. With
  /// `wait` false, fails at once (code 3) when someone else holds it.
  Result<Fd> lock_delivery(bool wait) const;

  /// Keys of subruns/<key>/ directories, sorted.
  std::vector<std::string> subrun_keys() const;

 private:
  /// An exclusive flock on state.lock.
  Result<Fd> lock_state() const;

  std::string root_;
  std::string build_;
  std::string path_;
  /// What update() wrote last, and the file's identity right after; shared
  /// by copies and guarded by its mutex (threads may share a RunDir).
  struct LastWritten {
    std::mutex mu;
    std::optional<RunState> state;
    std::string id;
  };
  std::shared_ptr<LastWritten> last_ = std::make_shared<LastWritten>();
  /// The appender's open journal and where its entries end; shared by
  /// copies like last_.
  struct JournalWriter {
    std::mutex mu;
    Fd lock;  ///< state.lock, open while appending goes on
    Fd fd;
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t used = 0;      ///< bytes of entries
    uint64_t capacity = 0;  ///< the file's size after our last write
    bool known = false;     ///< used/capacity are right for this file
  };
  std::shared_ptr<JournalWriter> journal_ = std::make_shared<JournalWriter>();
};

/// The parts of a journal's text. Readers stop at `end`, the first NUL; the
/// entries a writer keeps end at `used`, after the last newline before it (a
/// torn entry never had its newline written); bytes up to `dirty`, the last
/// that is not zero, are left by a crash and are zeroed by the next append.
struct JournalExtent {
  size_t used = 0;
  size_t end = 0;
  size_t dirty = 0;
};
JournalExtent journal_extent(std::string_view text);

/// Names of builds with a run directory, sorted.
std::vector<std::string> list_builds(const std::string& root);

/// Moves runs/<build> to history/<build>/<started-at>/ and keeps the newest
/// `keep` entries there (older ones are removed). No-op when absent.
Status archive_run(const std::string& root, const std::string& build, int keep);

/// A held flock on $STATE/locks/<build>.lock; released on destruction.
class BuildLock {
 public:
  /// Fails at once (code 3) if another process holds it.
  static Result<BuildLock> acquire(const std::string& root, const std::string& build);

 private:
  explicit BuildLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace rw::state
