// A library preloaded into `accord` by the command-line tests (LD_PRELOAD) to make chosen file
// system calls fail, so that the paths a failing disk takes can be tried from outside: a sync
// that fails after a home's mark is removed, a cleanup cut short, two makings of one directory.
//
// ACCORD_FAULTS holds rules separated by `;`, each `CALL:PATH:NTH[:ERRNO][@CALL:PATH]`:
//   CALL   fsync, fdatasync (SQLite's, and the store's sync of reads), open (open and open64),
//          write (write and pwrite64, on descriptors above 2), rename, unlink (a file's
//          removal) or rmdir (a directory's);
//   PATH   a part of the path the call names, as given (for rename, the new path); for fsync,
//          fdatasync, write, and unlinkat of a name relative to a directory's descriptor, the path
//          the kernel resolved (/proc/self/fd): name paths without symbolic links;
//   NTH    which matching call fails, from 1, or `*` for every one;
//   ERRNO  EIO (the default), EACCES, ENOSPC or EEXIST. An `open` that fails with EEXIST first
//          makes the file, as another process would have;
//   @...   the rule counts calls only after a call of that kind on that path succeeded.
// The first rule that fails a call ends its turn: later rules do not count it. A rule that
// cannot be read stops the process as the library loads (exit 97), so that a test can tell a
// library loaded from one ignored. SQLite's opens, writes and syncs are seen (it calls open64,
// pwrite64 and fdatasync). Calls not seen: openat, fopen, pwrite, writev, renameat2, link (so
// StagedFile::CommitNew is not reached).
// Test code only: never installed, never linked into accord.

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

enum class Call { kFsync, kFdatasync, kOpen, kWrite, kRename, kUnlink, kRmdir };

struct Rule {
  Call call;
  std::string path;
  int nth = 0;  // 0: every one
  int error = EIO;
  bool gated = false;  // counts only once `after` happened
  Call after_call = Call::kFsync;
  std::string after_path;
  bool open = true;  // the gate is open
  int seen = 0;
};

[[noreturn]] void Refuse(const std::string& what) {
  std::fprintf(stderr, "accord_faults: ACCORD_FAULTS: %s\n", what.c_str());
  std::_Exit(97);
}

Call ParseCall(const std::string& s) {
  if (s == "fsync") return Call::kFsync;
  if (s == "fdatasync") return Call::kFdatasync;
  if (s == "open") return Call::kOpen;
  if (s == "write") return Call::kWrite;
  if (s == "rename") return Call::kRename;
  if (s == "unlink") return Call::kUnlink;
  if (s == "rmdir") return Call::kRmdir;
  Refuse("unknown call `" + s + "`");
}

int ParseErrno(const std::string& s) {
  if (s.empty() || s == "EIO") return EIO;
  if (s == "EACCES") return EACCES;
  if (s == "ENOSPC") return ENOSPC;
  if (s == "EEXIST") return EEXIST;
  Refuse("unknown errno `" + s + "`");
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at; (at = s.find(sep, start)) != std::string::npos; start = at + 1) {
    parts.push_back(s.substr(start, at - start));
  }
  parts.push_back(s.substr(start));
  return parts;
}

Rule ParseRule(const std::string& text) {
  const size_t at = text.find('@');
  const std::vector<std::string> f = Split(text.substr(0, at), ':');
  if (f.size() < 3 || f.size() > 4 || f[1].empty()) Refuse("bad rule `" + text + "`");
  Rule rule;
  rule.call = ParseCall(f[0]);
  rule.path = f[1];
  if (f[2] != "*") {
    char* end = nullptr;
    const long n = std::strtol(f[2].c_str(), &end, 10);
    if (*end != '\0' || n < 1 || n > 1000000) Refuse("bad count in `" + text + "`");
    rule.nth = static_cast<int>(n);
  }
  rule.error = ParseErrno(f.size() == 4 ? f[3] : "");
  if (at != std::string::npos) {
    const std::vector<std::string> g = Split(text.substr(at + 1), ':');
    if (g.size() != 2 || g[1].empty()) Refuse("bad condition in `" + text + "`");
    rule.gated = true;
    rule.open = false;
    rule.after_call = ParseCall(g[0]);
    rule.after_path = g[1];
  }
  return rule;
}

std::mutex mu;
std::vector<Rule>* rules = nullptr;  // parsed at the first call, never freed

// A bit per Call that a rule names, as a call to fail or as its condition; every bit until the
// rules are read. A call no rule names runs at once: no lock, no allocation (a signal handler's
// write to a self-pipe among them).
std::atomic<unsigned> named{~0U};

unsigned Bit(Call call) { return 1U << static_cast<unsigned>(call); }

bool Named(Call call) { return (named.load(std::memory_order_acquire) & Bit(call)) != 0; }

std::vector<Rule>& Rules() {
  if (rules == nullptr) {
    rules = new std::vector<Rule>;
    if (const char* spec = std::getenv("ACCORD_FAULTS"); spec != nullptr && *spec != '\0') {
      for (const std::string& r : Split(spec, ';')) rules->push_back(ParseRule(r));
    }
    unsigned bits = 0;
    for (const Rule& r : *rules) bits |= Bit(r.call) | (r.gated ? Bit(r.after_call) : 0U);
    named.store(bits, std::memory_order_release);
  }
  return *rules;
}

// The errno the call on `path` fails with, or 0 to let it run.
int Fault(Call call, const std::string& path) {
  std::lock_guard<std::mutex> lock(mu);
  for (Rule& r : Rules()) {
    if (!r.open || r.call != call || path.find(r.path) == std::string::npos) continue;
    ++r.seen;
    if (r.nth == 0 || r.seen == r.nth) return r.error;
  }
  return 0;
}

// Opens the gates that a successful call on `path` opens.
void Happened(Call call, const std::string& path) {
  std::lock_guard<std::mutex> lock(mu);
  for (Rule& r : Rules()) {
    if (r.gated && r.after_call == call && path.find(r.after_path) != std::string::npos) {
      r.open = true;
    }
  }
}

std::string PathOfFd(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

template <typename F>
F Next(const char* name) {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (f == nullptr) Refuse(std::string("cannot find `") + name + "`");
  return reinterpret_cast<F>(f);
}

using OpenFn = int (*)(const char*, int, ...);

// The functions this library stands in front of, found once as it loads (Reals, in ReadRules), so
// that no call after that takes the loader's lock or a static's guard. A call whose kind a rule
// names still takes this library's lock and allocates: such a call is not for a signal handler.
struct Reals {
  int (*fsync)(int) = Next<int (*)(int)>("fsync");
  int (*fdatasync)(int) = Next<int (*)(int)>("fdatasync");
  OpenFn open = Next<OpenFn>("open");
  ssize_t (*write)(int, const void*, size_t) = Next<ssize_t (*)(int, const void*, size_t)>("write");
  ssize_t (*pwrite64)(int, const void*, size_t,
                      off64_t) = Next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  int (*rename)(const char*, const char*) = Next<int (*)(const char*, const char*)>("rename");
  int (*unlink)(const char*) = Next<int (*)(const char*)>("unlink");
  int (*rmdir)(const char*) = Next<int (*)(const char*)>("rmdir");
  int (*unlinkat)(int, const char*, int) = Next<int (*)(int, const char*, int)>("unlinkat");
  int (*remove)(const char*) = Next<int (*)(const char*)>("remove");
};

const Reals& Real() {
  static const Reals reals;
  return reals;
}

// Finds the functions and reads the rules as the library loads, before main.
[[gnu::constructor]] void ReadRules() {
  Real();
  Rules();
}

// Runs `real` unless a rule fails the call first (it returns -1 with errno set, having done
// nothing); a call that succeeds may open gates. `path_of` names what the call is on.
template <typename PathOf, typename F>
auto Run(Call call, PathOf path_of, F real) -> decltype(real()) {
  if (!Named(call)) return real();
  const std::string path = path_of();
  if (const int error = Fault(call, path); error != 0) {
    errno = error;
    return -1;
  }
  const auto result = real();
  if (result >= 0) Happened(call, path);
  return result;
}

// open's third argument, there only when the flags make a file.
mode_t ModeArgument(int flags, va_list args) {
  const bool makes = (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
  return makes ? static_cast<mode_t>(va_arg(args, int)) : 0;
}

// An open, unless a rule fails it; one that fails with EEXIST makes the file first.
int Open(OpenFn real, const char* path, int flags, mode_t mode) {
  if (!Named(Call::kOpen)) return real(path, flags, mode);
  const int error = Fault(Call::kOpen, path);
  if (error == EEXIST) {  // another process made it first
    const int fd = real(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
  } else if (error != 0) {
    errno = error;
    return -1;
  }
  const int fd = real(path, flags, mode);
  if (fd >= 0) Happened(Call::kOpen, path);
  return fd;
}

}  // namespace

extern "C" {

int fsync(int fd) {
  const auto real = Real().fsync;
  return Run(
      Call::kFsync, [&] { return PathOfFd(fd); }, [&] { return real(fd); });
}

int fdatasync(int fd) {
  const auto real = Real().fdatasync;
  return Run(
      Call::kFdatasync, [&] { return PathOfFd(fd); }, [&] { return real(fd); });
}

int open(const char* path, int flags, ...) {
  const auto real = Real().open;
  va_list args;
  va_start(args, flags);
  const mode_t mode = ModeArgument(flags, args);
  va_end(args);
  return Open(real, path, flags, mode);
}

// SQLite calls open64, which is open under another name where open64 adds no flag (64-bit
// targets, every one these tests run on).
static_assert(O_LARGEFILE == 0, "open64 differs from open here");
int open64(const char* path, int flags, ...) __attribute__((alias("open")));

ssize_t write(int fd, const void* data, size_t n) {
  const auto real = Real().write;
  if (fd <= 2) return real(fd, data, n);  // the standard streams, this library's message too
  return Run(
      Call::kWrite, [&] { return PathOfFd(fd); }, [&] { return real(fd, data, n); });
}

ssize_t pwrite64(int fd, const void* data, size_t n, off64_t offset) {
  const auto real = Real().pwrite64;
  if (fd <= 2) return real(fd, data, n, offset);
  return Run(
      Call::kWrite, [&] { return PathOfFd(fd); }, [&] { return real(fd, data, n, offset); });
}

int rename(const char* from, const char* to) {
  const auto real = Real().rename;
  return Run(
      Call::kRename, [&] { return std::string(to); }, [&] { return real(from, to); });
}

int unlink(const char* path) {
  const auto real = Real().unlink;
  return Run(
      Call::kUnlink, [&] { return std::string(path); }, [&] { return real(path); });
}

int rmdir(const char* path) {
  const auto real = Real().rmdir;
  return Run(
      Call::kRmdir, [&] { return std::string(path); }, [&] { return real(path); });
}

int unlinkat(int dirfd, const char* name, int flags) {
  const auto real = Real().unlinkat;
  const auto path = [&] {
    return name[0] == '/' || dirfd == AT_FDCWD ? std::string(name) : PathOfFd(dirfd) + "/" + name;
  };
  const Call call = (flags & AT_REMOVEDIR) != 0 ? Call::kRmdir : Call::kUnlink;
  return Run(call, path, [&] { return real(dirfd, name, flags); });
}

// glibc's remove() calls unlink and rmdir inside itself, where no preloaded library sees them.
int remove(const char* path) {
  const auto real = Real().remove;
  struct stat st {};
  const Call call = ::lstat(path, &st) == 0 && S_ISDIR(st.st_mode) ? Call::kRmdir : Call::kUnlink;
  return Run(
      call, [&] { return std::string(path); }, [&] { return real(path); });
}

}  // extern "C"
