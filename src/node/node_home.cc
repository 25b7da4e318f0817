// Making, opening and backing up a node's home (include/accord/node.h, docs/node.md).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "accord/config.h"
#include "accord/file.h"
#include "accord/json.h"
#include "node_impl.h"

namespace accord {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::string_view kIdentityAd = "accord/1 identity\n";

// Makes every file and directory under `root`, and `root` itself, durable: the files first, then
// the directories deepest first, so that each directory's entries are durable before its
// parent's. `what` names the tree in an error.
Status SyncTree(const fs::path& root, std::string_view what) {
  std::error_code ec;
  std::vector<fs::path> directories{root};
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec)) {
      directories.push_back(it->path());
    } else {
      ACCORD_RETURN_IF_ERROR(SyncPath(it->path().string()));
    }
  }
  if (ec) {
    return Fail(Code::kUnavailable,
                fmt::format("listing {} `{}`: {}", what, root.string(), ec.message()));
  }
  for (auto it = directories.rbegin(); it != directories.rend(); ++it) {
    ACCORD_RETURN_IF_ERROR(SyncPath(it->string()));
  }
  return OkStatus();
}

// Copies the policy directory `from` to `to`, every file and directory of the copy made durable
// (the home's own entry is made durable when the home's making ends).
Status CopyPolicy(const std::string& from, const fs::path& to) {
  std::error_code ec;
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) {
    return Fail(Code::kInvalidArgument,
                fmt::format("copying the policy `{}`: {}", from, ec.message()));
  }
  return SyncTree(to, "the policy's copy");
}

Result<Engine> LoadEngine(const fs::path& policy_dir) {
  auto policy = LoadPolicyDir(policy_dir);
  if (!policy) {
    return tl::unexpected(DiagnosticsToError(policy.error()));
  }
  return Engine::Compile(std::move(*policy));
}

std::string Pkcs11Meta(const Pkcs11Options& o) {
  return json::serialize(
      json::object{{"module", o.module}, {"token", o.token_label}, {"key", o.key_label}});
}

Result<Pkcs11Options> ParsePkcs11Meta(const std::string& text) {
  auto v = ParseJson(text);
  const json::object* o = v ? v->if_object() : nullptr;
  if (o == nullptr || !o->contains("module") || !o->at("module").is_string() ||
      !o->contains("token") || !o->at("token").is_string() || !o->contains("key") ||
      !o->at("key").is_string()) {
    return Fail(Code::kDataLoss, "the home's PKCS#11 settings are damaged");
  }
  Pkcs11Options opts;
  opts.module = std::string(o->at("module").get_string());
  opts.token_label = std::string(o->at("token").get_string());
  opts.key_label = std::string(o->at("key").get_string());
  return opts;
}

// Made first in a home being created (`node init`) or copied (`node backup`), and removed last:
// a directory that still has it holds no home, whatever else it holds, since the command was
// stopped part way (killed, or the power cut).
constexpr std::string_view kUnfinished = ".unfinished";

// kFailedPrecondition when `dir` is a home whose making did not finish.
Status RefuseUnfinished(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / kUnfinished, ec)) return OkStatus();
  return Fail(
      Code::kFailedPrecondition,
      fmt::format("`{}` holds no usable home: its making did not finish (`accord node init` "
                  "or `node backup` was stopped part way): remove the directory and make "
                  "it again; a PKCS#11 home's key may be left on its token (destroy it, or "
                  "give `node init` another --pkcs11-key-label)",
                  dir.string()));
}

// `path` as a directory's path without a trailing separator, so that its parent is the directory
// that holds it ("KOR/" has "KOR" as its parent path otherwise).
fs::path DirectoryPath(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p;
}

// The directory that holds `dir`, to make `dir`'s own entry durable.
std::string ParentOf(const fs::path& dir) {
  return dir.has_parent_path() ? dir.parent_path().string() : std::string(".");
}

// The mark, made under its own name at once (a temporary name renamed would leave a window in
// which the directory holds a file and no mark), then made durable with its entry. Whoever made
// it owns the making: `made` is set once this process created it, even should writing it fail
// after, so that the caller removes it. kAlreadyExists when another process made it (two
// `node init` on one empty directory), and the caller then removes nothing.
Status MarkUnfinished(const fs::path& dir, bool& made) {
  const std::string path = (dir / kUnfinished).string();
  constexpr std::string_view kText = "accord: the making of this home did not finish; no home\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) {
      return Fail(Code::kAlreadyExists,
                  fmt::format("`{}` is being made by another process (it holds `{}` now): "
                              "nothing it holds was touched",
                              dir.string(), kUnfinished));
    }
    return Fail(Code::kUnavailable,
                fmt::format("cannot make `{}`: {}", path, std::strerror(error)));
  }
  made = true;
  const ssize_t n = ::write(fd, kText.data(), kText.size());
  int error = 0;
  if (n != static_cast<ssize_t>(kText.size())) {
    error = n < 0 ? errno : EIO;  // a short write sets no errno
  } else if (::fsync(fd) != 0) {
    error = errno;
  }
  ::close(fd);
  if (error != 0) {
    return Fail(Code::kUnavailable,
                fmt::format("cannot write `{}`: {}", path, std::strerror(error)));
  }
  return SyncPath(dir.string());
}

// Removes what a failed making put in `dir` (marked by this process), then the mark and `dir`:
// the mark only once everything else is gone and that is durable, so that a removal that fails
// or is cut short leaves a directory that is still refused as a home. False when the mark is
// left; once it is gone, `dir` is removed if it is empty.
bool RemoveUnfinished(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> made;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    if (it->path().filename() != kUnfinished) made.push_back(it->path());
  }
  bool all = !ec;
  for (const fs::path& p : made) {
    fs::remove_all(p, ec);
    all = all && !ec;
  }
  if (!all || !SyncPath(dir.string())) return false;
  fs::remove(dir / kUnfinished, ec);
  if (ec) return false;
  fs::remove(dir, ec);  // should it stay, an empty directory is no home and harms nothing
  return true;
}

// The end of the making of `dir`: the mark goes, durably. Should the removal's sync fail, the
// mark is gone all the same: what `dir` holds is whole (the caller keeps it).
Status MarkFinished(const fs::path& dir) {
  if (::unlink((dir / kUnfinished).c_str()) != 0) {
    return Fail(
        Code::kUnavailable,
        fmt::format("cannot remove `{}`: {}", (dir / kUnfinished).string(), std::strerror(errno)));
  }
  return SyncPath(dir.string());
}

// The end of a making that `made` says how it went: on success the mark goes, and `kept` is
// set. On a failure before the mark went, what this process made is removed (only when it made
// the mark: `marked`); after it, `dir` is whole and kept (`kept`), and the error says so.
Status EndMaking(const fs::path& dir, bool marked, Status made, bool& kept) {
  kept = false;
  if (made) {
    made = MarkFinished(dir);
    std::error_code ec;
    kept = made || !fs::exists(dir / kUnfinished, ec);
    if (!made && kept) {
      return Fail(made.error().code, fmt::format("`{}` is made and whole, but {}", dir.string(),
                                                 made.error().message));
    }
  }
  if (!made) {
    std::error_code ec;
    if (!marked) {
      fs::remove(dir, ec);  // only if empty: nothing of another process's is touched
    } else if (!RemoveUnfinished(dir)) {
      return Fail(made.error().code,
                  fmt::format("{}; what was made could not all be removed: `{}` is left, "
                              "marked as unfinished (remove it)",
                              made.error().message, dir.string()));
    }
  }
  return made;
}

// The files of the home other than the store, relative to it, sorted.
Result<std::vector<fs::path>> HomeFiles(const fs::path& home) {
  // The store's files, and the lock of a node serving the home (nothing of the home's state).
  static constexpr std::string_view kNotCopied[] = {"state.db", "state.db-wal", "state.db-shm",
                                                    "state.db-journal", "serve.lock"};
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(home, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path relative = it->path().lexically_relative(home);
    if (std::find(std::begin(kNotCopied), std::end(kNotCopied), relative.string()) !=
        std::end(kNotCopied)) {
      continue;
    }
    const fs::file_status status = it->symlink_status(ec);
    if (ec) break;
    if (!fs::is_directory(status) && !fs::is_regular_file(status)) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("`{}` in the home is neither a file nor a directory: not copied",
                              relative.string()));
    }
    files.push_back(relative);
  }
  if (ec) {
    return Fail(Code::kUnavailable,
                fmt::format("cannot list the home `{}`: {}", home.string(), ec.message()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Result<HomeBackup> BackupHome(const std::string& home_dir, const std::string& out_dir) {
  const fs::path home(home_dir), out = DirectoryPath(out_dir);
  std::error_code ec;
  ACCORD_RETURN_IF_ERROR(RefuseUnfinished(home));
  if (!fs::is_regular_file(home / "state.db", ec)) {
    return Fail(Code::kNotFound, fmt::format("`{}` is not an accord home (no state.db)", home_dir));
  }
  ACCORD_ASSIGN_OR_RETURN(const std::vector<fs::path> files, HomeFiles(home));
  // A new directory, made here (not one found, nor a link to one), so that a failure removes
  // only what this made.
  const fs::path parent = ParentOf(out);
  fs::create_directories(parent, ec);
  if (ec || ::mkdir(out.c_str(), 0700) != 0) {
    const int error = errno;
    if (!ec && error == EEXIST) {
      return Fail(Code::kAlreadyExists,
                  fmt::format("`{}` already exists: a backup needs a new directory", out_dir));
    }
    return Fail(Code::kInvalidArgument, fmt::format("cannot create `{}`: {}", out_dir,
                                                    ec ? ec.message() : std::strerror(error)));
  }
  bool marked = false;
  auto made = [&]() -> Result<HomeBackup> {
    if (::chmod(out.c_str(), 0700) != 0) {  // whatever the umask
      return Fail(Code::kInvalidArgument,
                  fmt::format("cannot make `{}` private: {}", out_dir, std::strerror(errno)));
    }
    ACCORD_RETURN_IF_ERROR(MarkUnfinished(out, marked));
    HomeBackup backup;
    ACCORD_ASSIGN_OR_RETURN(
        backup.store, BackupSqliteStore((home / "state.db").string(), (out / "state.db").string()));
    for (const fs::path& file : files) {
      const fs::path from = home / file, to = out / file;
      const bool directory = fs::is_directory(fs::symlink_status(from, ec));
      if (directory) {
        fs::create_directory(to, from, ec);  // with the directory's permissions, less the umask
      } else {
        fs::copy_file(from, to, fs::copy_options::none, ec);  // with the file's permissions
      }
      // A file gone since the listing (a port file rewritten by a server) is not copied.
      if (ec == std::errc::no_such_file_or_directory && !fs::exists(from)) continue;
      if (ec) {
        return Fail(Code::kUnavailable,
                    fmt::format("cannot copy `{}`: {}", from.string(), ec.message()));
      }
      backup.files.push_back(directory ? file.string() + "/" : file.string());
    }
    // The copy's files and directories, then the new directory's own entry.
    ACCORD_RETURN_IF_ERROR(SyncTree(out, "the backup"));
    ACCORD_RETURN_IF_ERROR(SyncPath(parent.string()));
    return backup;
  }();
  // The mark goes last (its removal syncs `out`), or what was made goes.
  bool kept = false;
  const Status ended =
      EndMaking(out, marked, made ? OkStatus() : Status(tl::unexpected(made.error())), kept);
  if (!ended) return tl::unexpected(ended.error());
  return made;
}

Status InitNode(NodeInitOptions options) {
  const fs::path home = DirectoryPath(options.home);
  std::error_code ec;
  ACCORD_RETURN_IF_ERROR(RefuseUnfinished(home));
  if (fs::exists(home, ec) && !fs::is_empty(home, ec)) {
    return Fail(
        Code::kAlreadyExists,
        fmt::format("`{}` exists and is not empty: a home needs a new directory", options.home));
  }
  ACCORD_ASSIGN_OR_RETURN(Engine engine, LoadEngine(options.policy_dir));
  const int32_t me = engine.PartyIndex(options.party);
  if (me < 0) {
    return Fail(Code::kInvalidArgument, fmt::format("party `{}` is not in the policy `{}`",
                                                    options.party, options.policy_dir));
  }
  fs::create_directories(home, ec);
  if (ec) {
    return Fail(Code::kInvalidArgument,
                fmt::format("cannot create `{}`: {}", options.home, ec.message()));
  }
  // An empty directory someone else made, and could still change, is no home of this user's
  // (root's chmod succeeds on anyone's: the owner is checked too).
  struct stat st {};
  if (::chmod(home.c_str(), 0700) != 0 || ::stat(home.c_str(), &st) != 0) {
    const int error = errno;
    return Fail(Code::kInvalidArgument, fmt::format("cannot make `{}` private (mode 0700): {}",
                                                    options.home, std::strerror(error)));
  }
  if (st.st_uid != ::geteuid()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}` belongs to another user (uid {}): a home must be its "
                            "own user's",
                            options.home, st.st_uid));
  }
  // Any failure from here on removes what was made, so a half-made home never exists; one
  // stopped part way keeps its mark, and is refused.
  std::optional<Bytes> token_key;  // the CKA_ID of the key made on the token
  bool marked = false;
  Status made = [&]() -> Status {
    ACCORD_RETURN_IF_ERROR(MarkUnfinished(home, marked));
    ACCORD_RETURN_IF_ERROR(CopyPolicy(options.policy_dir, home / "policy"));
    std::unique_ptr<KeyEncryptionKey> kek;
    std::string key_store;
    if (options.key_store == KeyStoreKind::kFile) {
      const std::string path = (home / "keystore").string();
      ACCORD_RETURN_IF_ERROR(CreateFileKeyStore(path, options.passphrase, options.scrypt));
      ACCORD_ASSIGN_OR_RETURN(kek, OpenFileKeyStore(path, options.passphrase));
      key_store = "file";
    } else {
      ACCORD_ASSIGN_OR_RETURN(token_key, CreatePkcs11Kek(options.pkcs11));
      ACCORD_ASSIGN_OR_RETURN(kek, OpenPkcs11Kek(options.pkcs11));
      key_store = "pkcs11";
    }
    const SigningKey sign = SigningKey::Generate();
    const WrapKeyPair wrap = WrapKeyPair::Generate();
    SecretBytes identity(64);
    {
      auto out = identity.RevealMutable(InsecureSecretAccess());
      auto s = sign.seed(InsecureSecretAccess()).Reveal(InsecureSecretAccess());
      auto w = wrap.private_key(InsecureSecretAccess()).Reveal(InsecureSecretAccess());
      std::copy(s.begin(), s.end(), out.begin());
      std::copy(w.begin(), w.end(), out.begin() + 32);
    }
    ACCORD_ASSIGN_OR_RETURN(Bytes sealed,
                            kek->Wrap(identity, AsBytes(std::string(kIdentityAd) + options.party)));
    ACCORD_ASSIGN_OR_RETURN(auto store, OpenSqliteStore((home / "state.db").string()));
    ACCORD_RETURN_IF_ERROR(store->Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store->SetMeta("party", options.party));
      ACCORD_RETURN_IF_ERROR(
          store->SetMeta("clock", options.clock == ClockKind::kSimulated ? "simulated" : "system"));
      ACCORD_RETURN_IF_ERROR(store->SetMeta("key_store", key_store));
      if (options.key_store == KeyStoreKind::kPkcs11) {
        ACCORD_RETURN_IF_ERROR(store->SetMeta("pkcs11", Pkcs11Meta(options.pkcs11)));
      }
      ACCORD_RETURN_IF_ERROR(store->SetMeta("identity", Base64Encode(sealed)));
      for (const Subject& s : engine.policy().subjects) {
        if (s.party == options.party) {
          ACCORD_RETURN_IF_ERROR(
              store->PutSubject(SubjectRecord{s.id, s.clearance, s.need_to_know, s.compartments}));
        }
      }
      return OkStatus();
    }));
    // Written whole and made durable with the directory's entries (ReplaceFile).
    ACCORD_RETURN_IF_ERROR(ReplaceFile(
        (home / "public.json").string(),
        node_internal::EncodePublicKeys({options.party, sign.public_key(), wrap.public_key()}),
        0644));
    // The home's own entry, made when the directory was (the policy's and the store's are
    // durable by now), before the mark goes.
    return SyncPath(ParentOf(home));
  }();
  bool kept = false;
  made = EndMaking(home, marked, std::move(made), kept);
  if (!made) {
    if (kept) return made;  // the mark went: the home is whole and kept, with its key
    // The key made on the token seals nothing that is kept: its label is freed for the next try.
    if (token_key) {
      if (Status destroyed = DestroyPkcs11Kek(options.pkcs11, *token_key); !destroyed) {
        return Fail(made.error().code,
                    fmt::format("{} (and the key `{}` made on token `{}` stays there: {})",
                                made.error().message, options.pkcs11.key_label,
                                options.pkcs11.token_label, destroyed.error().message));
      }
    }
    return made;
  }
  return OkStatus();
}

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options) {
  const fs::path home(options.home);
  std::error_code ec;
  ACCORD_RETURN_IF_ERROR(RefuseUnfinished(home));
  if (!fs::exists(home / "state.db", ec)) {
    return Fail(Code::kNotFound, fmt::format("`{}` is not an accord home (no state.db): create "
                                             "one with `accord node init`",
                                             options.home));
  }
  SqliteOptions store_options;
  store_options.sync_file_for_testing = options.sync_file_for_testing;
  ACCORD_ASSIGN_OR_RETURN(auto store, OpenSqliteStore((home / "state.db").string(), store_options));
  auto meta = [&](const char* key) -> Result<std::string> {
    ACCORD_ASSIGN_OR_RETURN(auto v, store->GetMeta(key));
    if (!v) {
      return Fail(Code::kDataLoss, fmt::format("the home has no `{}` setting", key));
    }
    return *v;
  };
  ACCORD_ASSIGN_OR_RETURN(std::string party, meta("party"));
  ACCORD_ASSIGN_OR_RETURN(std::string clock_kind, meta("clock"));
  std::unique_ptr<Clock> clock;
  if (clock_kind == "simulated") {
    clock = options.at ? std::unique_ptr<Clock>(std::make_unique<FixedClock>(*options.at))
                       : std::make_unique<SystemClock>();
  } else if (options.at) {
    return Fail(Code::kFailedPrecondition,
                "this home runs on the system clock; `--at` is only for homes created with "
                "`--simulate`");
  } else {
    clock = std::make_unique<SystemClock>();
  }
  ACCORD_ASSIGN_OR_RETURN(Engine engine, LoadEngine(home / "policy"));
  // The policy is the operator's to edit (brought up to a partner's, say): one that no longer
  // names this home's party could decide nothing for it.
  if (engine.PartyIndex(party) < 0) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("this home's party `{}` is not in its policy `{}`", party,
                            (home / "policy").string()));
  }
  ACCORD_ASSIGN_OR_RETURN(std::string key_store, meta("key_store"));
  std::unique_ptr<KeyEncryptionKey> kek;
  if (key_store == "pkcs11") {
    ACCORD_ASSIGN_OR_RETURN(std::string settings, meta("pkcs11"));
    ACCORD_ASSIGN_OR_RETURN(Pkcs11Options p11, ParsePkcs11Meta(settings));
    if (options.pin.empty()) {
      return Fail(Code::kInvalidArgument, "this home's KEK is on a PKCS#11 token: a PIN is needed");
    }
    p11.pin = std::move(options.pin);
    ACCORD_ASSIGN_OR_RETURN(kek, OpenPkcs11Kek(p11));
  } else {
    if (options.passphrase.empty()) {
      return Fail(Code::kInvalidArgument, "this home's key store needs a passphrase");
    }
    ACCORD_ASSIGN_OR_RETURN(kek,
                            OpenFileKeyStore((home / "keystore").string(), options.passphrase));
  }
  ACCORD_ASSIGN_OR_RETURN(std::string identity_text, meta("identity"));
  auto sealed = Base64Decode(identity_text);
  if (!sealed) {
    return Fail(Code::kDataLoss, "the home's identity keys are damaged");
  }
  auto identity = kek->Unwrap(*sealed, AsBytes(std::string(kIdentityAd) + party));
  if (!identity || identity->size() != 64) {
    return Fail(Code::kDataLoss, "the home's identity keys fail their integrity check");
  }
  auto bytes = identity->Reveal(InsecureSecretAccess());
  ACCORD_ASSIGN_OR_RETURN(SigningKey sign,
                          SigningKey::FromSeed(SecretBytes::Copy(bytes.first(32))));
  ACCORD_ASSIGN_OR_RETURN(WrapKeyPair wrap,
                          WrapKeyPair::FromPrivate(SecretBytes::Copy(bytes.subspan(32))));
  ACCORD_ASSIGN_OR_RETURN(
      note::Signer log_signer,
      note::Signer::FromSeed(node_internal::LogOrigin(party),
                             sign.seed(InsecureSecretAccess()).Reveal(InsecureSecretAccess())));
  node_internal::AuditLog log(*store);
  const bool system_clock = clock_kind != "simulated";
  auto impl = std::unique_ptr<Impl>(new Impl{options.home,
                                             std::move(party),
                                             std::move(clock),
                                             std::move(engine),
                                             std::move(kek),
                                             std::move(sign),
                                             std::move(wrap),
                                             std::move(store),
                                             options.max_payload_bytes,
                                             std::move(log),
                                             std::move(log_signer),
                                             {}});
  impl->system_clock = system_clock;
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

}  // namespace accord
