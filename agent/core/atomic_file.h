#pragma once
// Small state files (alert state, outbox, maintenance history) written so that a
// crash or kill -9 at any moment leaves either the old or the new content, never
// a torn file: write to a temp file in the same directory, fsync, rename, fsync
// the directory.

#include <string>

#include "agent/core/status.h"

namespace dbpulse {

// Creates `dir` (and parents) with mode 0700 if missing.
Status ensureDirectory(const std::string& dir);

// Atomically replaces `path` with `content`.
Status writeFileAtomic(const std::string& path, const std::string& content);

// Reads a whole file; NotFound when it does not exist. Files over `max_bytes` are
// refused (InvalidArgument): a state file that large is corrupt, not data. Anything but a
// regular file (a FIFO, a device such as /dev/zero, a directory) is refused
// (FailedPrecondition) without blocking.
Result<std::string> readSmallFile(const std::string& path, size_t max_bytes = 64 << 20);

// Renames a state file that could not be parsed to `path + ".corrupt"` (replacing an older
// copy there), so the next save does not destroy the evidence. Returns the new name.
Result<std::string> moveAside(const std::string& path);

}  // namespace dbpulse
