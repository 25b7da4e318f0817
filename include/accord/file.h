// accord/file.h — reading a whole file that comes from outside, with a bound on its size; making
// what was written durable.
//
// A file named on the command line or found in a policy directory is outside input: one of many
// gigabytes (or `/dev/zero`) must be refused with a clear message, not read into memory until the
// process runs out of it. These functions read at most `max_bytes`: a regular file larger than
// that is refused before any of it is read, and any other (a pipe, standard input) once more
// than `max_bytes` have arrived.
//
// Thread safety: safe to call concurrently (standard input aside).
#ifndef ACCORD_FILE_H_
#define ACCORD_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "accord/secret.h"
#include "accord/status.h"

namespace accord {

// How an error names the file: by its path ("cannot read `PATH`: REASON"), or as "it" ("cannot
// read it: REASON") for a caller whose own message names the file already.
enum class FileNamed { kByPath, kAsIt };

// The whole of the file at `path`, or of standard input when `path` is "-".
// Errors: kNotFound when there is no such file; kInvalidArgument "`PATH` is larger than N bytes"
// when it holds more than `max_bytes`; kFailedPrecondition when it cannot be opened or read (a
// directory, no permission), with the system's reason.
[[nodiscard]] Result<std::string> ReadFileAtMost(const std::string& path, size_t max_bytes,
                                                 FileNamed named = FileNamed::kByPath);

// The same, read straight into memory that wipes itself, for a file that may hold a secret (a
// payload, a passphrase): no copy of it is left in a stream's buffers.
[[nodiscard]] Result<SecretBytes> ReadSecretFileAtMost(const std::string& path, size_t max_bytes);

// Makes the file or directory at `path` durable (fsync): after writing a file, its contents;
// after creating, renaming or removing an entry, the directory that holds it. A symbolic link is
// followed. Errors: kUnavailable "cannot make `PATH` durable: REASON".
[[nodiscard]] Status SyncPath(const std::string& path);
// The directory that holds the entry `path`: what comes before its last slash ("/" for an entry
// of the root, "." for a name without a slash).
[[nodiscard]] std::string DirectoryOf(const std::string& path);
// SyncPath(DirectoryOf(path)): after the entry is created or renamed into place.
[[nodiscard]] Status SyncDirectoryOf(const std::string& path);

// Puts `bytes` at `path` whole or not at all: written to a new file beside it (mkostemp, so
// O_EXCL, made with mode 0600 and then given `mode`), made durable, renamed over `path`, and the
// rename made durable. A reader sees the old file or the new one, never part of one; a file or
// a symbolic link found at `path` is replaced, never written through, so that a file someone
// else owns (planted there before) does not receive a private key with its owner kept.
// Errors: kFailedPrecondition "cannot write `PATH`: REASON", with nothing left behind (should
// the new file not be removable either, the message ends "its staged copy `TEMP` could not be
// removed: REASON (remove it)"); and kUnavailable "`PATH` is in place, but cannot make `DIR`
// durable: REASON" when only the directory's sync failed.
[[nodiscard]] Status ReplaceFile(const std::string& path, std::string_view bytes, mode_t mode);

// ReplaceFile in two steps, for files that must change together (a key and its certificate):
// Write does all that can fail for want of space, Commit only renames. Stage every file first,
// then commit them with CommitInOrder; a failure while staging leaves every old file in place:
//
//   ACCORD_ASSIGN_OR_RETURN(StagedFile key, StagedFile::Write(key_path, key_pem, 0600));
//   ACCORD_ASSIGN_OR_RETURN(StagedFile cert, StagedFile::Write(cert_path, cert_pem, 0644));
//   StagedFile both[] = {std::move(key), std::move(cert)};
//   return CommitInOrder(both);
class StagedFile {
 public:
  // The new file beside `path`, written and made durable. Errors: kFailedPrecondition as
  // ReplaceFile's, with nothing left behind (or the new file named).
  [[nodiscard]] static Result<StagedFile> Write(const std::string& path, std::string_view bytes,
                                                mode_t mode);

  StagedFile(StagedFile&& other) noexcept;
  StagedFile& operator=(StagedFile&& other) noexcept;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  // Removes the new file unless it was committed.
  ~StagedFile();

  // Renames the new file over the path and makes the rename durable; at most once. Errors as
  // ReplaceFile's (the new file is removed when the rename fails, or named in the error).
  [[nodiscard]] Status Commit();
  // Commit for a file that must not replace one: the new file is renamed to the path only if
  // the path names nothing yet (a file, a link, a directory): RENAME_NOREPLACE, or a hard link
  // where the file system has no such rename. Errors: kAlreadyExists "`PATH` already exists"
  // (the new file is removed, or named in the error); others as Commit's.
  [[nodiscard]] Status CommitNew();

 private:
  StagedFile(std::string path, std::string temp) : path_(std::move(path)), temp_(std::move(temp)) {}
  Status Put(bool replace);  // Commit (rename) or CommitNew (link)

  std::string path_;
  std::string temp_;  // empty once committed or moved from
};

// Commits `files` in their order, so that a set of files that must change together is split on
// disk only by a rename that fails. A commit that says kUnavailable has put its file in place
// (only the directory's sync failed), so the next ones follow it, and that first kUnavailable is
// returned once all are in place. Any other error stops there: the files before it are in place,
// it and those after it are not (each is removed when dropped). Errors: the first that is not
// kUnavailable, else the first kUnavailable, as StagedFile::Commit's.
[[nodiscard]] Status CommitInOrder(std::span<StagedFile> files);

// Writes all of `bytes` to the open descriptor `fd`, again after a signal or a partial write.
// False with errno set when it fails (EIO when the system made no progress and gave no reason).
[[nodiscard]] bool WriteAll(int fd, std::string_view bytes);

// A write lock on the file at `path` (made with mode 0600 if missing, never through a symbolic
// link), held until this is dropped: an open file description's lock (F_OFD_SETLK), so that
// threads exclude each other as processes do, and one that NFS carries. The process that holds
// it may end in any way: the kernel releases it.
class FileLock {
 public:
  enum class Wait { kUntilFree, kNo };
  // Errors: kUnavailable "`PATH` is locked by another holder" (Wait::kNo, held elsewhere);
  // kFailedPrecondition "cannot lock `PATH`: REASON".
  [[nodiscard]] static Result<FileLock> Take(const std::string& path, Wait wait);

  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace accord

#endif  // ACCORD_FILE_H_
