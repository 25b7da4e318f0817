#include "accord/file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

namespace accord {
namespace {

// The first buffer for a file whose size is not known in advance (a pipe).
constexpr size_t kFirstChunk = 64 << 10;

// Closes a descriptor it opened; standard input stays open.
class InputFile {
 public:
  explicit InputFile(const std::string& path)
      : fd_(path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC)),
        owned_(path != "-") {}
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  const int fd_;
  const bool owned_;
};

// How the errors below name the file at `path`.
std::string Name(const std::string& path, FileNamed named) {
  return named == FileNamed::kAsIt ? "it" : fmt::format("`{}`", path);
}

Error Unreadable(const std::string& path, FileNamed named, int error) {
  return Error{error == ENOENT ? Code::kNotFound : Code::kFailedPrecondition,
               fmt::format("cannot read {}: {}", Name(path, named), std::strerror(error))};
}

Error TooLarge(const std::string& path, FileNamed named, size_t max_bytes) {
  return Error{Code::kInvalidArgument,
               fmt::format("{} is larger than {} bytes", Name(path, named), max_bytes)};
}

// Reads the file into `out`, a std::string or a SecretBytes; `data` gives the writable bytes of
// `out`. `out` grows by doubling (a SecretBytes wipes each buffer it leaves) up to one byte more
// than `max_bytes`, the byte that tells a file of exactly `max_bytes` from a larger one.
template <typename Buffer, typename Data>
Status ReadIntoOrThrow(const std::string& path, FileNamed named, size_t max_bytes, Buffer& out,
                       Data data) {
  const InputFile file(path);
  if (file.fd() < 0) return tl::unexpected(Unreadable(path, named, errno));
  const size_t limit = max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1;
  size_t capacity = std::min(kFirstChunk, limit);
  struct stat st {};
  if (::fstat(file.fd(), &st) == 0 && S_ISREG(st.st_mode)) {
    // What is left to read: standard input may be a file read partly already.
    const off_t at = ::lseek(file.fd(), 0, SEEK_CUR);
    const auto left =
        static_cast<uint64_t>(at < 0 ? st.st_size : std::max<off_t>(st.st_size - at, 0));
    if (left > max_bytes) return tl::unexpected(TooLarge(path, named, max_bytes));
    // +1: the end is seen at once (left + 1 does not wrap: a file's size is an off_t).
    capacity = static_cast<size_t>(std::min<uint64_t>(left + 1, limit));
  }
  out.Resize(capacity);
  size_t size = 0;
  while (true) {
    if (size == out.size()) {
      if (size == limit) {
        out.Resize(0);
        return tl::unexpected(TooLarge(path, named, max_bytes));
      }
      out.Resize(size > limit / 2 ? limit : size * 2);
    }
    const ssize_t n = ::read(file.fd(), data(out) + size, out.size() - size);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      out.Resize(0);
      return tl::unexpected(Unreadable(path, named, error));
    }
    size += static_cast<size_t>(n);
  }
  out.Resize(size);
  return {};
}

// ReadIntoOrThrow, with a buffer that cannot be had (a bound near SIZE_MAX and an endless file)
// reported as the file being too large rather than thrown.
template <typename Buffer, typename Data>
Status ReadInto(const std::string& path, FileNamed named, size_t max_bytes, Buffer& out,
                Data data) {
  try {
    return ReadIntoOrThrow(path, named, max_bytes, out, data);
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  out.Resize(0);
  return Fail(Code::kInvalidArgument,
              fmt::format("{} is too large to read into memory", Name(path, named)));
}

// std::string spelled as SecretBytes is, for ReadInto.
struct StringBuffer {
  std::string bytes;
  [[nodiscard]] size_t size() const { return bytes.size(); }
  void Resize(size_t size) { bytes.resize(size); }
};

Status CannotWrite(const std::string& path, int error) {
  return Fail(Code::kFailedPrecondition,
              fmt::format("cannot write `{}`: {}", path, std::strerror(error)));
}

// Removes the staged file `temp` after `failed`; should that fail too, the error names it, since
// it may hold a secret (a private key, a payload) that nothing else will remove.
Status NoteLeftBehind(Status failed, const std::string& temp) {
  if (::unlink(temp.c_str()) == 0 || errno == ENOENT) return failed;
  const int error = errno;
  return Fail(failed.error().code,
              fmt::format("{}; its staged copy `{}` could not be removed: {} (remove it)",
                          failed.error().message, temp, std::strerror(error)));
}

}  // namespace

Result<std::string> ReadFileAtMost(const std::string& path, size_t max_bytes, FileNamed named) {
  StringBuffer out;
  ACCORD_RETURN_IF_ERROR(
      ReadInto(path, named, max_bytes, out, [](StringBuffer& b) { return b.bytes.data(); }));
  return std::move(out.bytes);
}

Result<SecretBytes> ReadSecretFileAtMost(const std::string& path, size_t max_bytes) {
  SecretBytes out;
  ACCORD_RETURN_IF_ERROR(ReadInto(path, FileNamed::kByPath, max_bytes, out, [](SecretBytes& b) {
    return b.RevealMutable(InsecureSecretAccess()).data();
  }));
  return out;
}

Status SyncPath(const std::string& path) {
  // O_NONBLOCK: a FIFO put in the file's place does not hold the open (its fsync then fails).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return Fail(Code::kUnavailable,
                fmt::format("cannot make `{}` durable: {}", path, std::strerror(error)));
  }
  ::close(fd);
  return OkStatus();
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

Status SyncDirectoryOf(const std::string& path) { return SyncPath(DirectoryOf(path)); }

bool WriteAll(int fd, std::string_view bytes) {
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;  // no progress, and no reason given
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

Result<StagedFile> StagedFile::Write(const std::string& path, std::string_view bytes, mode_t mode) {
  std::string temp = path + ".tmp-XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  bool ok = fd >= 0 && (mode == 0600 || ::fchmod(fd, mode) == 0) && WriteAll(fd, bytes) &&
            ::fsync(fd) == 0;
  int error = errno;
  if (fd >= 0 && ::close(fd) != 0 && ok) {
    ok = false;
    error = errno;
  }
  if (!ok) {
    Status failed = CannotWrite(path, error);
    if (fd >= 0) failed = NoteLeftBehind(std::move(failed), temp);
    return tl::unexpected(std::move(failed).error());
  }
  return StagedFile(path, std::move(temp));
}

StagedFile::StagedFile(StagedFile&& other) noexcept
    : path_(std::move(other.path_)), temp_(std::exchange(other.temp_, {})) {}

StagedFile& StagedFile::operator=(StagedFile&& other) noexcept {
  if (this != &other) {
    if (!temp_.empty()) ::unlink(temp_.c_str());
    path_ = std::move(other.path_);
    temp_ = std::exchange(other.temp_, {});
  }
  return *this;
}

StagedFile::~StagedFile() {
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

Status StagedFile::Commit() { return Put(/*replace=*/true); }

Status StagedFile::CommitNew() { return Put(/*replace=*/false); }

Status StagedFile::Put(bool replace) {
  if (temp_.empty()) {
    return Fail(Code::kFailedPrecondition, fmt::format("`{}` was put in place already", path_));
  }
  const std::string temp = std::exchange(temp_, {});
  // A rename replaces whatever the path names. RENAME_NOREPLACE refuses to (EEXIST); where the
  // file system or a system-call filter has no such rename (NFS: EINVAL; an old seccomp profile:
  // EPERM), a hard link refuses the same way, and leaves the staged name to remove.
  bool linked = false;
  int put = 0;
  if (replace) {
    put = ::rename(temp.c_str(), path_.c_str());
  } else {
    put = ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE);
    if (put != 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM)) {
      linked = true;
      put = ::link(temp.c_str(), path_.c_str());
    }
  }
  const int error = errno;
  if (put != 0) {
    Status failed = !replace && error == EEXIST
                        ? Fail(Code::kAlreadyExists, fmt::format("`{}` already exists", path_))
                        : CannotWrite(path_, error);
    return NoteLeftBehind(std::move(failed), temp);
  }
  if (linked) ::unlink(temp.c_str());  // the file is in place under its own name too
  if (Status synced = SyncDirectoryOf(path_); !synced) {
    return Fail(Code::kUnavailable,
                fmt::format("`{}` is in place, but {}", path_, synced.error().message));
  }
  return OkStatus();
}

Status CommitInOrder(std::span<StagedFile> files) {
  Status first_failure = OkStatus();
  for (StagedFile& file : files) {
    Status put = file.Commit();
    if (put) continue;
    if (put.error().code != Code::kUnavailable) return put;
    if (first_failure) first_failure = std::move(put);
  }
  return first_failure;
}

Result<FileLock> FileLock::Take(const std::string& path, Wait wait) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (fd < 0) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("cannot lock `{}`: {}", path, std::strerror(errno)));
  }
  FileLock lock(fd);
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;  // from the start, l_len 0: to the end
  const int command = wait == Wait::kUntilFree ? F_OFD_SETLKW : F_OFD_SETLK;
  int locked = ::fcntl(fd, command, &whole);
  while (locked != 0 && errno == EINTR) locked = ::fcntl(fd, command, &whole);
  if (locked != 0) {
    if (errno == EAGAIN || errno == EACCES) {
      return Fail(Code::kUnavailable, fmt::format("`{}` is locked by another holder", path));
    }
    return Fail(Code::kFailedPrecondition,
                fmt::format("cannot lock `{}`: {}", path, std::strerror(errno)));
  }
  return lock;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status ReplaceFile(const std::string& path, std::string_view bytes, mode_t mode) {
  ACCORD_ASSIGN_OR_RETURN(StagedFile staged, StagedFile::Write(path, bytes, mode));
  return staged.Commit();
}

}  // namespace accord
