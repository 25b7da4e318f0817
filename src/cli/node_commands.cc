#include "node_commands.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "accord/clock.h"
#include "accord/config.h"
#include "accord/file.h"
#include "accord/merkle.h"
#include "accord/node.h"
#include "accord/pki.h"
#include "accord/utf8.h"
#include "commands.h"
#include "outbox_commands.h"

namespace accord::cli {

const CLI::Validator& CountValidator() {
  static const CLI::Validator validator(
      [](std::string& input) -> std::string {
        uint64_t value = 0;
        const char* end = input.data() + input.size();
        const auto [p, ec] = std::from_chars(input.data(), end, value);
        if (input.empty() || ec != std::errc() || p != end ||
            (input.size() > 1 && input[0] == '0')) {
          return "`" + input + "` is not a decimal number from 0 to 18446744073709551615";
        }
        return {};
      },
      "COUNT");
  return validator;
}

int Report(const Error& e) {
  PrintError(e.message);
  if (Denial(e) || IsNotOriginator(e)) {
    return kExitDenied;
  }
  // Damage to this node's own state is an integrity failure, whatever it meant for the input
  // (decision #186: a partner's envelope is then unavailable, not refused).
  return e.code == Code::kDataLoss || e.own_state ? kExitIntegrity : kExitFailed;
}

// Whether WriteFile(path) can create its file, asked before an operation whose output it is:
// the operation commits, and a failure to write its output afterwards would read as if it had
// not happened. WriteFile replaces what is at `path`, so that must be nothing, a regular file,
// or a link to one or to nothing (the link is replaced, not followed): never a directory, nor a
// device or FIFO (`/dev/null`, `/dev/stdout`) that a payload would replace.
bool CanWrite(const std::string& path) {
  if (path.empty() || path == "-") return true;
  const auto refuse = [&](std::string_view why) {
    PrintError(fmt::format("cannot write `{}`: {}", path, why));
    return false;
  };
  if (path.ends_with('/')) return refuse("it names a directory");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return refuse("it is a directory");
    if (!S_ISREG(st.st_mode)) {
      return refuse(
          "it is not a regular file (a device or FIFO would be replaced; use `-` for "
          "standard output)");
    }
  } else if (errno != ENOENT) {
    return refuse(std::strerror(errno));
  }
  const std::string dir = DirectoryOf(path);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return refuse(fmt::format("directory `{}`: {}", dir, std::strerror(errno)));
  }
  return true;
}

// Whether `path` lies inside the home `home` (its store, key store, policy), where no output
// may go: WriteFile would replace the file, and the home be lost.
bool InsideHome(const std::string& path, const std::string& home) {
  if (path.empty() || path == "-" || home.empty()) return false;
  std::error_code ec;
  const std::filesystem::path h = std::filesystem::weakly_canonical(home, ec);
  if (ec) return false;
  const std::filesystem::path p =
      std::filesystem::weakly_canonical(std::filesystem::path(DirectoryOf(path)), ec);
  if (ec) return false;
  const auto [end, unused] = std::mismatch(h.begin(), h.end(), p.begin(), p.end());
  return end == h.end();
}

namespace {
namespace json = boost::json;

// A file that may hold a secret (a payload, a passphrase), or stdin for "-", read straight into
// memory that wipes itself, when it holds at most `max_bytes`.
std::optional<SecretBytes> ReadSecretFile(const std::string& path, size_t max_bytes,
                                          std::string_view limit = {}) {
  auto bytes = ReadSecretFileAtMost(path, max_bytes);
  if (!bytes) {
    PrintReadError(bytes.error(), limit);
    return std::nullopt;
  }
  return std::move(*bytes);
}

// A new home's key store is sealed under its passphrase alone, which a copy of the file lets
// anyone guess at offline, at scrypt's cost per guess: a short one falls, whatever that cost.
constexpr size_t kMinPassphraseCharacters = 12;

// How many characters `text` holds (a byte that begins none counts as one).
size_t CharacterCount(std::string_view text) {
  size_t count = 0;
  for (; !text.empty(); ++count) text.remove_prefix(std::max<size_t>(1, Utf8SequenceLength(text)));
  return count;
}

// A secret from a file (first line) or an environment variable.
std::optional<SecretBytes> ReadSecret(const std::string& file, const char* env,
                                      std::string_view what, std::string_view flag) {
  if (!file.empty()) {
    auto text = ReadSecretFile(file, kMaxTextFileBytes);
    if (!text) return std::nullopt;
    std::string_view line = text->RevealText(InsecureSecretAccess());
    line = line.substr(0, line.find('\n'));
    if (line.ends_with('\r')) line.remove_suffix(1);  // a file written on Windows
    return SecretBytes::Copy(line);
  }
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') {
    return SecretBytes::Copy(std::string_view(v));  // ForgetSecretsInEnvironment wipes `v`
  }
  PrintError(fmt::format("a {} is needed: give {} FILE or set {}", what, flag, env));
  return std::nullopt;
}

// ACCORD_PASSPHRASE and ACCORD_PKCS11_PIN would stay in this process's environment, and in
// /proc/PID/environ (which the process being not dumpable keeps from all but root), for as long
// as it runs: a server runs for months. Once the secrets are read (or a file was used instead),
// each is wiped where it lies and removed. Called before any other thread starts; no command
// reads them again.
void ForgetSecretsInEnvironment() {
  for (const char* name : {"ACCORD_PASSPHRASE", "ACCORD_PKCS11_PIN"}) {
    if (char* v = std::getenv(name); v != nullptr) {
      SecureWipe(v, std::strlen(v));
      ::unsetenv(name);
    }
  }
}

bool HasEnv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  std::string_view rest = list;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

std::string Joined(const std::vector<std::string>& items) {
  return items.empty() ? "-" : fmt::format("{}", fmt::join(items, ","));
}

// Holds SIGINT, SIGTERM and SIGHUP while it lives, for the whole process (the node's threads
// would otherwise take them): one that comes meanwhile is noted, and raised again when this goes,
// once the handlers before are back and standard output is flushed. One ignored before stays
// ignored. One at a time (not nested).
class SignalsHeld {
 public:
  SignalsHeld() {
    noted_ = 0;
    released_ = false;
    struct sigaction note {};
    note.sa_handler = Note;
    note.sa_flags = SA_RESTART;  // a write or sync under way goes on
    sigemptyset(&note.sa_mask);
    for (size_t i = 0; i < kHeld.size(); ++i) {
      sigaction(kHeld[i], nullptr, &before_[i]);
      if (before_[i].sa_handler != SIG_IGN) sigaction(kHeld[i], &note, nullptr);
    }
  }
  ~SignalsHeld() {
    // Released before the handlers go back: a handler running on another thread meanwhile
    // either sees this and raises the signal itself, or noted it before this reads it.
    released_ = true;
    for (size_t i = 0; i < kHeld.size(); ++i) sigaction(kHeld[i], &before_[i], nullptr);
    if (const int signal = noted_.exchange(0); signal != 0) {
      std::fflush(stdout);
      raise(signal);
    }
  }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  static constexpr std::array<int, 3> kHeld = {SIGINT, SIGTERM, SIGHUP};
  // Async-signal-safe: atomics that are lock-free, sigaction and kill.
  static void Note(int signal) {
    noted_ = signal;
    if (!released_) return;
    for (size_t i = 0; i < kHeld.size(); ++i) {
      if (kHeld[i] == signal) sigaction(signal, &before_[i], nullptr);
    }
    kill(getpid(), signal);
  }
  static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);
  static inline std::atomic<int> noted_{0};
  static inline std::atomic<bool> released_{false};
  static inline std::array<struct sigaction, 3> before_{};
};

}  // namespace

bool WriteFile(const std::string& path, ByteView bytes, mode_t mode) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (path == "-") {
    // Straight to the descriptor: stdio's buffer would keep the last block of a payload
    // (`accord get`) until the process ends, unwiped.
    if (std::fflush(stdout) != 0) return false;  // main says so: the stream keeps the error
    if (WriteAll(STDOUT_FILENO, text)) return true;
    PrintError(fmt::format("cannot write the output: {}", std::strerror(errno)));
    return false;
  }
  // A Ctrl-C while the file is staged would leave the staged copy (of a payload, say) beside
  // it, unnoticed: the signal waits until the file is in place or removed.
  const SignalsHeld held;
  if (Status written = ReplaceFile(path, text, mode); !written) {
    PrintError(written.error().message);
    return false;
  }
  return true;
}

namespace {

int ReadHomeSecretsFromFilesOrEnvironment(const std::string& passphrase_file,
                                          const std::string& pin_file, NodeOptions& options) {
  const bool has_pass = !passphrase_file.empty() || HasEnv("ACCORD_PASSPHRASE");
  const bool has_pin = !pin_file.empty() || HasEnv("ACCORD_PKCS11_PIN");
  if (!has_pass && !has_pin) {
    PrintError(
        "a passphrase is needed: give --passphrase-file FILE or set ACCORD_PASSPHRASE (for a "
        "PKCS#11 home, --pin-file FILE or ACCORD_PKCS11_PIN)");
    return kExitUsage;
  }
  if (has_pass) {
    auto pass = ReadSecret(passphrase_file, "ACCORD_PASSPHRASE", "passphrase", "--passphrase-file");
    if (!pass) return kExitIo;
    options.passphrase = std::move(*pass);
  }
  if (has_pin) {
    auto pin = ReadSecret(pin_file, "ACCORD_PKCS11_PIN", "PIN", "--pin-file");
    if (!pin) return kExitIo;
    options.pin = std::move(*pin);
  }
  return kExitOk;
}

}  // namespace

int ReadHomeSecrets(const std::string& passphrase_file, const std::string& pin_file,
                    NodeOptions& options) {
  const int code = ReadHomeSecretsFromFilesOrEnvironment(passphrase_file, pin_file, options);
  ForgetSecretsInEnvironment();
  return code;
}

struct NodeCommands::Flags {
  // Shared by every command on a home.
  std::string home;
  std::string at;
  std::string passphrase_file;
  std::string pin_file;
  size_t max_payload = 64 << 20;

  // node init
  std::string party, policy, key_store = "file", p11_module = "/usr/lib/softhsm/libsofthsm2.so",
                             p11_token, p11_key = "accord-kek";
  bool simulate = false;
  uint32_t kdf_log_n = 17;

  // objects
  std::string id, level, topics, compartments, rel_to, in = "-", out, as, to, text, kind, file;
  std::string subject_id, clearance, need_to_know;
  uint64_t from = 0, count = 0, index = 0, size = 0, to_size = 0;
  std::optional<uint64_t> proof_from;  // log witness --from
  std::vector<uint64_t> from_sizes;    // log consistency --from
  std::string pki_out, pki_nodes, pki_users, pki_hosts = "localhost,127.0.0.1";
  int64_t pki_days = 365;
  std::string pki_dir;
  std::vector<std::string> revoke_certs;
  std::vector<std::string> own_checkpoints;  // log verify --checkpoint
  int64_t crl_days = 30;
  std::string proof;
  bool everywhere = false;
  bool json = false;
  bool record_forks = false;  // log shown

  CLI::App* init = nullptr;
  CLI::App* put = nullptr;
  CLI::App* get = nullptr;
  CLI::App* ls = nullptr;
  CLI::App* release = nullptr;
  CLI::App* receive = nullptr;
  CLI::App* forward = nullptr;
  CLI::App* consent = nullptr;
  CLI::App* reclassify = nullptr;
  CLI::App* destroy = nullptr;
  CLI::App* report = nullptr;
  CLI::App* subject_add = nullptr;
  CLI::App* subject_remove = nullptr;
  CLI::App* subject_ls = nullptr;
  CLI::App* export_public = nullptr;
  CLI::App* import_public = nullptr;
  CLI::App* log_checkpoint = nullptr;
  CLI::App* log_key = nullptr;
  CLI::App* log_show = nullptr;
  CLI::App* log_prove = nullptr;
  CLI::App* log_consistency = nullptr;
  CLI::App* log_verify = nullptr;
  CLI::App* log_witness = nullptr;
  CLI::App* log_evidence = nullptr;
  CLI::App* log_shown = nullptr;
  CLI::App* pki_init = nullptr;
  CLI::App* backup = nullptr;
  CLI::App* pki_revoke = nullptr;
  CLI::App* outbox_ls = nullptr;
  CLI::App* outbox_export = nullptr;
  size_t outbox_limit = 100;
};

NodeCommands::NodeCommands(CLI::App& app) : flags_(std::make_unique<Flags>()) {
  Flags& f = *flags_;
  auto home_flags = [&f](CLI::App* cmd) {
    cmd->add_option("--home", f.home, "The node's home directory")
        ->envname("ACCORD_HOME")
        ->required();
    cmd->add_option("--at", f.at,
                    "Simulated homes only: the instant of the operation (RFC 3339 with offset)");
    cmd->add_option("--passphrase-file", f.passphrase_file,
                    "File whose first line is the key store passphrase (or set "
                    "ACCORD_PASSPHRASE)");
    cmd->add_option("--pin-file", f.pin_file,
                    "PKCS#11 homes: file with the token's user PIN (or set ACCORD_PKCS11_PIN)");
    cmd->add_option("--max-payload", f.max_payload,
                    "Refuse payloads and packages larger than this many bytes (default 64 MiB, "
                    "at most 1 GiB)")
        ->check(CountValidator())
        ->check(CLI::Range(size_t{1}, kMaxMaxPayload));
  };

  auto* node = app.add_subcommand("node", "Create a node's home, or back one up");
  node->require_subcommand(1);
  f.init = node->add_subcommand("init", "Create a home: key store, identity keys, store, policy");
  f.init->add_option("--home", f.home, "New directory for the home")->required();
  f.init->add_option("--party", f.party, "This node's party, e.g. KOR")->required();
  f.init->add_option("--policy", f.policy, "Policy directory (copied into the home)")->required();
  f.init->add_flag("--simulate", f.simulate,
                   "Simulated clock: every command then accepts --at to replay history");
  f.init->add_option("--key-store", f.key_store, "file (default) or pkcs11")
      ->check(CLI::IsMember({"file", "pkcs11"}));
  f.init->add_option("--passphrase-file", f.passphrase_file,
                     "File key store: file whose first line is the passphrase (or set "
                     "ACCORD_PASSPHRASE)");
  f.init
      ->add_option(
          "--kdf-cost", f.kdf_log_n,
          "File key store: scrypt N = 2^cost (default 17; below 15 for tests and demos only)")
      ->check(CLI::Range(10, 20));
  f.init->add_option("--pkcs11-module", f.p11_module, "PKCS#11 module (default SoftHSM2)");
  f.init->add_option("--pkcs11-token", f.p11_token, "PKCS#11 token label");
  f.init->add_option("--pkcs11-key-label", f.p11_key, "Label of the KEK on the token");
  f.init->add_option("--pin-file", f.pin_file,
                     "PKCS#11: file with the user PIN (or set ACCORD_PKCS11_PIN)");

  f.backup = node->add_subcommand(
      "backup",
      "Copy a home into a new directory, its store as one snapshot (a server on the home goes on)");
  f.backup->add_option("--home", f.home, "The node's home")->envname("ACCORD_HOME")->required();
  f.backup->add_option("--out", f.out, "New directory for the copy")->required();

  f.put = app.add_subcommand("put", "Store a new information object originated by this party");
  home_flags(f.put);
  f.put->add_option("--id", f.id, "Object id")->required();
  f.put->add_option("--level", f.level, "Classification in this party's scheme")->required();
  f.put->add_option("--topics", f.topics, "Comma-separated topics");
  f.put->add_option("--compartments", f.compartments, "Comma-separated compartments");
  f.put->add_option("--rel-to", f.rel_to, "Comma-separated parties it may be released to");
  f.put->add_option("--in", f.in, "Payload file (default: standard input)");

  f.get = app.add_subcommand("get", "Read an object as a subject: the decision, then the payload");
  home_flags(f.get);
  f.get->add_option("--id", f.id, "Object id")->required();
  f.get->add_option("--as", f.as, "Subject id from this node's directory")->required();
  f.get->add_option("--out", f.out, "Write the payload here (default: standard output)");

  f.ls = app.add_subcommand("ls", "List the objects this node holds");
  home_flags(f.ls);
  f.ls->add_flag("--json", f.json, "JSON Lines, one object per line");

  f.release = app.add_subcommand("release", "Release an object to a party: a transfer package");
  home_flags(f.release);
  f.release->add_option("--id", f.id, "Object id")->required();
  f.release->add_option("--to", f.to, "Recipient party")->required();
  f.release->add_option("--out", f.out, "Package file to write")->required();

  f.receive = app.add_subcommand(
      "receive", "Verify and apply a package, notice or receipt; write a signed receipt");
  home_flags(f.receive);
  f.receive->add_option("file", f.file, "Package, notice or receipt file ('-': stdin)")->required();
  f.receive->add_option("--receipt-out", f.out,
                        "Where to write the receipt (default: FILE.receipt; for '-', stdout)");

  f.forward = app.add_subcommand(
      "forward", "Forward a received object to a third party, with the originator's consent");
  home_flags(f.forward);
  f.forward->add_option("--id", f.id, "Object id")->required();
  f.forward->add_option("--to", f.to, "Third party")->required();
  f.forward->add_option("--out", f.out, "Package file to write")->required();

  f.consent = app.add_subcommand("consent", "Originator: consent to onward release to a party");
  home_flags(f.consent);
  f.consent->add_option("--id", f.id, "Object id")->required();
  f.consent->add_option("--to", f.to, "The third party")->required();
  f.consent->add_option("--out", f.out, "Notice file to write")->required();

  f.reclassify = app.add_subcommand("reclassify", "Originator: change an object's level");
  home_flags(f.reclassify);
  f.reclassify->add_option("--id", f.id, "Object id")->required();
  f.reclassify->add_option("--level", f.level, "New level in this party's scheme")->required();
  f.reclassify->add_option("--out", f.out, "Notice file for the holders")->required();

  f.destroy = app.add_subcommand(
      "destroy",
      "Destroy this node's copy (its data key is erased); --everywhere: originator's "
      "notice to every holder");
  home_flags(f.destroy);
  f.destroy->add_option("--id", f.id, "Object id")->required();
  f.destroy->add_flag("--everywhere", f.everywhere, "Also write a destroy-everywhere notice");
  f.destroy->add_option("--out", f.out, "Notice file (with --everywhere)");

  f.report = app.add_subcommand("report", "Report a loss or compromise to the originator");
  home_flags(f.report);
  f.report->add_option("--id", f.id, "Object id")->required();
  f.report->add_option("--kind", f.kind, "loss or compromise")
      ->required()
      ->check(CLI::IsMember({"loss", "compromise"}));
  f.report->add_option("--text", f.text, "What happened (default: none; at most 64 KiB)");
  f.report->add_option("--out", f.out, "Notice file for the originator")->required();

  auto* outbox = app.add_subcommand(
      "outbox", "The envelopes queued for partners, and one written out again to carry by hand");
  outbox->require_subcommand(1);
  f.outbox_ls = outbox->add_subcommand(
      "ls", "Count the envelopes per partner and state; list those not delivered");
  home_flags(f.outbox_ls);
  f.outbox_ls->add_option("--limit", f.outbox_limit, "List at most this many (default 100)")
      ->check(CountValidator());
  f.outbox_export = outbox->add_subcommand(
      "export", "Write a queued envelope to a file again, as the command that made it did");
  home_flags(f.outbox_export);
  f.outbox_export->add_option("--id", f.id, "Package or notice id (`outbox ls`)")->required();
  f.outbox_export->add_option("--to", f.to, "The partner it is queued for")->required();
  f.outbox_export->add_option("--out", f.out, "Envelope file to write ('-': stdout)")->required();

  auto* subject = app.add_subcommand("subject", "This node's directory of people and systems");
  subject->require_subcommand(1);
  f.subject_add = subject->add_subcommand("add", "Add or replace a subject");
  home_flags(f.subject_add);
  f.subject_add->add_option("--id", f.subject_id, "Subject id")->required();
  f.subject_add->add_option("--clearance", f.clearance, "A level of this party")->required();
  f.subject_add->add_option("--need-to-know", f.need_to_know, "Comma-separated topics");
  f.subject_add->add_option("--compartments", f.compartments, "Comma-separated compartments");
  f.subject_remove = subject->add_subcommand(
      "remove", "Remove a subject: its certificates are refused from the next request on");
  home_flags(f.subject_remove);
  f.subject_remove->add_option("--id", f.subject_id, "Subject id")->required();
  f.subject_ls = subject->add_subcommand("ls", "List the subjects");
  home_flags(f.subject_ls);

  auto* keys = app.add_subcommand("keys", "This party's public keys, and its partners'");
  keys->require_subcommand(1);
  f.export_public = keys->add_subcommand(
      "export-public", "Print the public keys partners need to address packages to this party");
  home_flags(f.export_public);
  f.export_public->add_option("--out", f.out, "File to write (default: standard output)");
  f.import_public = keys->add_subcommand("import", "Import a partner's exported public keys");
  home_flags(f.import_public);
  f.import_public->add_option("file", f.file, "File written by `keys export-public`")->required();

  auto* pki = app.add_subcommand("pki", "A deployment's development PKI for mutual TLS");
  pki->require_subcommand(1);
  f.pki_init = pki->add_subcommand(
      "init", "Create a CA, a certificate per node and one per user (PEM files, keys 0600)");
  f.pki_init->add_option("--out", f.pki_out, "New directory for the PKI")->required();
  f.pki_init->add_option("--policy", f.policy,
                         "Take the nodes (parties) and users (subjects) from this policy");
  f.pki_init->add_option("--nodes", f.pki_nodes,
                         "Comma-separated parties (with or without --policy)");
  f.pki_init->add_option("--users", f.pki_users, "Comma-separated SUBJECT:PARTY");
  f.pki_init->add_option("--hosts", f.pki_hosts,
                         "Names in the node certificates (default localhost,127.0.0.1)");
  f.pki_init->add_option("--days", f.pki_days, "Validity in days (default 365)")
      ->check(CLI::Range(1, 3650));
  f.pki_revoke = pki->add_subcommand(
      "revoke",
      "Write DIR/crl.pem, the CA's revocation list: the certificates it revoked already and "
      "these; with none, renew the list (accord serve --crl reads it)");
  f.pki_revoke->add_option("--pki", f.pki_dir, "The PKI's directory (ca.pem, ca.key)")->required();
  f.pki_revoke->add_option("cert", f.revoke_certs, "Certificates (PEM files) to revoke");
  f.pki_revoke->add_option("--days", f.crl_days, "Days until the next update (default 30)")
      ->check(CLI::Range(1, 3650));

  // The audit log of a home, beside the format-free checks main.cc declares on `log`.
  CLI::App* log = app.get_subcommand("log");
  f.log_checkpoint = log->add_subcommand(
      "checkpoint", "Print the log's current checkpoint, signed by this node (C2SP signed note)");
  home_flags(f.log_checkpoint);
  f.log_checkpoint->add_option("--out", f.out, "File to write (default: standard output)");
  f.log_key = log->add_subcommand("key", "Print the verifier key of this node's checkpoints");
  home_flags(f.log_key);
  f.log_show = log->add_subcommand("show", "Print the log's entries");
  home_flags(f.log_show);
  f.log_show->add_option("--from", f.from, "First index (default 0)")->check(CountValidator());
  f.log_show->add_option("--count", f.count, "How many (default: to the end)")
      ->check(CountValidator());
  f.log_show->add_flag("--json", f.json, "JSON Lines: index, leaf hash and entry");
  f.log_prove = log->add_subcommand(
      "prove", "Inclusion proof of entry --index in the tree of --size entries");
  home_flags(f.log_prove);
  f.log_prove->add_option("--index", f.index, "The entry's index")
      ->required()
      ->check(CountValidator());
  f.log_prove->add_option("--size", f.size, "Tree size (default: the log's size)")
      ->check(CountValidator());
  f.log_prove->add_option("--entry-out", f.out, "Also write the entry's bytes here");
  f.log_consistency = log->add_subcommand(
      "consistency", "Consistency proof that the tree of --from entries is a prefix of --to");
  home_flags(f.log_consistency);
  f.log_consistency
      ->add_option("--from", f.from_sizes,
                   fmt::format("The earlier size, or up to {} of them, comma-separated",
                               merkle::kMaxConsistencyProofs))
      ->delimiter(',')
      ->required()
      ->check(CountValidator());
  f.log_consistency->add_option("--to", f.to_size, "The later size (default: the log's size)")
      ->check(CountValidator());
  f.log_consistency->add_flag(
      "--json", f.json,
      "One JSON document of every proof, as POST /v1/log/consistency answers (for `log shown`)");
  f.log_verify = log->add_subcommand(
      "verify", "Recompute the whole tree from the entries and check every stored hash");
  home_flags(f.log_verify);
  f.log_verify->add_option(
      "--checkpoint", f.own_checkpoints,
      "A checkpoint this node signed (`log checkpoint`'s output, kept off the node, or one a "
      "partner cosigned): the entries must lead to its root. Repeatable (-: standard input)");
  f.log_witness = log->add_subcommand(
      "witness", "Check a partner's checkpoint against the last one cosigned, and cosign it");
  home_flags(f.log_witness);
  f.log_witness->add_option("--checkpoint", f.file, "The partner's signed checkpoint")->required();
  CLI::Option* witness_from = f.log_witness->add_option(
      "--from", f.proof_from,
      "The size the proof starts at, the one given to the partner's `log consistency --from` "
      "(with --proof, and only with it): if this home cosigned another size since (its "
      "federation, say), nothing is kept and the command fails (exit 1) rather than take the "
      "proof for a fork");
  CLI::Option* witness_proof =
      f.log_witness
          ->add_option("--proof", f.proof,
                       "Consistency proof from the size last cosigned (hex, comma-separated; "
                       "the partner prints it with `log consistency --from SIZE`)")
          ->needs(witness_from);
  witness_from->needs(witness_proof);
  witness_from->check(CountValidator());
  f.log_witness->add_option("--out", f.out, "Write the cosigned checkpoint here");
  f.log_evidence = log->add_subcommand(
      "evidence", "Print the evidence kept of partners' rewritten or truncated logs");
  home_flags(f.log_evidence);
  f.log_shown = log->add_subcommand(
      "shown",
      "List the checkpoints of a partner's log that came as evidence and are not yet proved "
      "consistent with the one cosigned; with --proofs, prove them");
  home_flags(f.log_shown);
  f.log_shown->add_option("--party", f.party, "The partner")->required();
  CLI::Option* shown_proofs = f.log_shown->add_option(
      "--proofs", f.file,
      "The partner's proofs to the checkpoint cosigned last (its `accord log consistency --from "
      "SIZES --to SIZE --json`)");
  f.log_shown
      ->add_flag("--record-forks", f.record_forks,
                 "Keep a checkpoint the proofs do not connect as a fork (evidence kept, refusal "
                 "logged); without it, it stays unproved: a file passed by hand may have been "
                 "altered")
      ->needs(shown_proofs);
}

NodeCommands::~NodeCommands() = default;

std::optional<int> NodeCommands::Run() {
  Flags& f = *flags_;
  if (*f.init) {
    NodeInitOptions o;
    o.home = f.home;
    o.party = f.party;
    o.policy_dir = f.policy;
    o.clock = f.simulate ? ClockKind::kSimulated : ClockKind::kSystem;
    if (f.key_store == "pkcs11") {
      if (f.p11_token.empty()) {
        PrintError("--pkcs11-token is required with --key-store pkcs11");
        return kExitUsage;
      }
      o.key_store = KeyStoreKind::kPkcs11;
      o.pkcs11.module = f.p11_module;
      o.pkcs11.token_label = f.p11_token;
      o.pkcs11.key_label = f.p11_key;
      auto pin = ReadSecret(f.pin_file, "ACCORD_PKCS11_PIN", "PIN", "--pin-file");
      ForgetSecretsInEnvironment();
      if (!pin) return f.pin_file.empty() ? kExitUsage : kExitIo;  // none given, or unreadable
      o.pkcs11.pin = std::move(*pin);
    } else {
      auto pass =
          ReadSecret(f.passphrase_file, "ACCORD_PASSPHRASE", "passphrase", "--passphrase-file");
      ForgetSecretsInEnvironment();
      if (!pass) return f.passphrase_file.empty() ? kExitUsage : kExitIo;
      if (const size_t n = CharacterCount(pass->RevealText(InsecureSecretAccess()));
          n < kMinPassphraseCharacters) {
        PrintError(fmt::format(
            "a new home's passphrase has at least {} characters, and this one has {}: it seals "
            "every key of the home (a phrase of a few words is long and easy to remember)",
            kMinPassphraseCharacters, n));
        return kExitUsage;
      }
      o.passphrase = std::move(*pass);
      o.scrypt.n = uint64_t{1} << f.kdf_log_n;
    }
    if (auto s = InitNode(std::move(o)); !s) {
      return Report(s.error());
    }
    fmt::print("created the home of {} at {} ({} clock, {} key store)\n", f.party, f.home,
               f.simulate ? "simulated" : "system", f.key_store);
    return kExitOk;
  }

  if (*f.backup) {
    auto made = BackupHome(f.home, f.out);
    if (!made) return Report(made.error());
    const uint64_t entries = made->store.log_size;
    const std::string_view noun = entries == 1 ? "entry" : "entries";
    fmt::print("backup of the home {} in {}: the store ({} bytes, schema {}, a log of {} {})",
               f.home, f.out, made->store.bytes, made->store.schema_version, entries, noun);
    for (const std::string& file : made->files) {  // the top level only
      const size_t slash = file.find('/');
      if (slash == std::string::npos || slash + 1 == file.size()) fmt::print(", {}", file);
    }
    fmt::print(
        "\nRestored, the node's log goes back to {} {}: partners that witnessed it larger "
        "report a rollback.\n",
        entries, noun);
    return kExitOk;
  }

  if (*f.pki_init) {
    PkiOptions o;
    o.dir = f.pki_out;
    o.nodes = SplitList(f.pki_nodes);
    o.hosts = SplitList(f.pki_hosts);
    o.not_before = Instant{SystemClock().Now().micros - kIssueBackdateSeconds * 1'000'000};
    o.valid_days = f.pki_days;
    if (!f.policy.empty()) {
      auto policy = LoadPolicyDir(f.policy);
      if (!policy) {
        PrintError(DiagnosticsToError(policy.error()).message);
        return kExitPolicyInvalid;
      }
      for (const Party& p : policy->parties) o.nodes.push_back(p.id);
      for (const Subject& s : policy->subjects) o.users.emplace_back(s.id, s.party);
    }
    for (const std::string& u : SplitList(f.pki_users)) {
      const size_t colon = u.find(':');
      if (colon == std::string::npos) {
        PrintError(fmt::format("--users: `{}` is not SUBJECT:PARTY", u));
        return kExitUsage;
      }
      o.users.emplace_back(u.substr(0, colon), u.substr(colon + 1));
    }
    if (o.nodes.empty()) {
      PrintError("no nodes: give --nodes or --policy");
      return kExitUsage;
    }
    // The keys are staged beside their names (`KEY.tmp-XXXXXX`) until every file is: a signal
    // meanwhile waits until they are in place or removed.
    auto made = [&] {
      const SignalsHeld held;
      return CreateDevelopmentPki(o);
    }();
    if (!made) return Report(made.error());
    fmt::print(
        "development PKI in {}: ca.pem, {} node certificate(s) in nodes/, {} user "
        "certificate(s) in users/, valid {} days\n",
        f.pki_out, made->nodes.size(), made->users.size(), f.pki_days);
    return kExitOk;
  }

  if (*f.pki_revoke) {
    const std::filesystem::path dir(f.pki_dir);
    // Signals are not held, as `pki init` holds them: a revoke may wait for another's lock, and
    // the list it stages holds nothing secret.
    auto made = RevokeCertificate(RevokeOptions{
        (dir / "ca.pem").string(), (dir / "ca.key").string(), (dir / "crl.pem").string(),
        f.revoke_certs, SystemClock().Now(), f.crl_days, kIssueBackdateSeconds});
    if (!made) return Report(made.error());
    fmt::print("{}: {} certificate(s) revoked ({} new), next update {}\n",
               (dir / "crl.pem").string(), made->revoked, made->added,
               FormatInstant(made->next_update));
    return kExitOk;
  }

  CLI::App* const commands[] = {f.log_checkpoint,  f.log_key,      f.log_show,      f.log_prove,
                                f.log_consistency, f.log_verify,   f.log_witness,   f.log_evidence,
                                f.log_shown,       f.put,          f.get,           f.ls,
                                f.release,         f.receive,      f.forward,       f.consent,
                                f.reclassify,      f.destroy,      f.report,        f.subject_add,
                                f.subject_remove,  f.subject_ls,   f.export_public, f.import_public,
                                f.outbox_ls,       f.outbox_export};
  CLI::App* ran = nullptr;
  for (CLI::App* c : commands) {
    if (*c) ran = c;
  }
  if (ran == nullptr) {
    return std::nullopt;
  }

  // Open the home.
  NodeOptions options;
  options.home = f.home;
  options.max_payload_bytes = f.max_payload;
  if (!f.at.empty()) {
    auto at = ParseInstant(f.at);
    if (!at) {
      PrintError(fmt::format("--at: {}", at.error().message));
      return kExitUsage;
    }
    options.at = *at;
  }
  // A passphrase or PIN read from standard input would take the payload or package read from it
  // too (or they it).
  const bool reads_stdin =
      (ran == f.put && f.in == "-") ||
      (f.file == "-" && (ran == f.receive || ran == f.import_public || ran == f.log_witness ||
                         ran == f.log_shown)) ||
      (ran == f.log_verify && std::ranges::find(f.own_checkpoints, "-") != f.own_checkpoints.end());
  if (reads_stdin && (f.passphrase_file == "-" || f.pin_file == "-")) {
    PrintError("the passphrase or PIN and the input cannot both come from standard input");
    return kExitUsage;
  }
  if (InsideHome(f.out, f.home)) {
    PrintError(fmt::format("cannot write `{}`: it is inside the home `{}`", f.out, f.home));
    return kExitIo;
  }
  if (const int code = ReadHomeSecrets(f.passphrase_file, f.pin_file, options); code != 0) {
    return code;
  }
  auto opened = Node::Open(std::move(options));
  if (!opened) {
    return Report(opened.error());
  }
  Node& node = **opened;
  const std::string when = FormatInstant(node.Now());

  if (ran == f.put) {
    auto payload = ReadSecretFile(f.in, f.max_payload, "--max-payload");
    if (!payload) return kExitIo;
    NewObject o{f.id, f.level, SplitList(f.topics), SplitList(f.compartments), SplitList(f.rel_to)};
    auto s = node.Create(o, payload->Reveal(InsecureSecretAccess()));
    if (!s) return Report(s.error());
    fmt::print("stored {} ({} {}, {} bytes, sealed) at {}\n", f.id, node.party(), f.level,
               payload->size(), when);
    return kExitOk;
  }
  if (ran == f.get) {
    if (!CanWrite(f.out)) return kExitIo;  // before the read, which logs an access
    auto r = node.Read(f.as, f.id);
    if (!r) return Report(r.error());
    if (r->marking_level.empty()) {
      PrintLine(fmt::format("allow ({}): {} reads {} of its own party, {}", ReasonName(r->reason),
                            f.as, f.id, when));
    } else {
      PrintLine(fmt::format("allow ({}): marked {} {} ({}), originator {}, under {}",
                            ReasonName(r->reason), node.party(), r->marking_level, r->marking_name,
                            r->originator, r->agreement));
    }
    const bool ok =
        WriteFile(f.out.empty() ? "-" : f.out, r->payload.Reveal(InsecureSecretAccess()));
    return ok ? kExitOk : kExitIo;
  }
  // `ls` and `log show`, `prove` and `consistency` may read what a node serving this home
  // committed without its sync yet (its group commits): once the objects or the log's size are
  // read, a sync makes them durable before they are shown, so that a power cut cannot take back
  // an object, an entry, a size or a root the operator was shown (the order of decision #143).
  if (ran == f.ls) {
    auto list = node.List();
    if (!list) return Report(list.error());
    if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());
    for (const auto& o : list->objects) {
      if (f.json) {
        const auto array = [](const std::vector<std::string>& items) {
          return json::array(items.begin(), items.end());
        };
        json::object j{{"id", o.id},
                       {"originator", o.originator},
                       {"level", o.level},
                       {"version", o.version},
                       {"received_from", o.received_from},
                       {"destroyed_at", o.destroyed_at ? json::value(FormatInstant(*o.destroyed_at))
                                                       : json::value(nullptr)},
                       {"bytes", o.payload_bytes},
                       {"topics", array(o.topics)},
                       {"compartments", array(o.compartments)},
                       {"rel_to", array(o.rel_to)},
                       {"held_by", array(o.held_by)}};
        fmt::print("{}\n", json::serialize(j));
      } else {
        // What a partner named (ids, topics) is escaped: no terminal control from a package.
        fmt::print("{}\n",
                   OneLine(fmt::format(
                       "{:<16} {}/{} v{} {:>8} B  topics {}  rel_to {}  {}{}", o.id, o.originator,
                       o.level, o.version, o.payload_bytes, Joined(o.topics), Joined(o.rel_to),
                       o.received_from.empty() ? "held by " + Joined(o.held_by)
                                               : "from " + o.received_from,
                       o.destroyed_at ? "  DESTROYED " + FormatInstant(*o.destroyed_at) : "")));
      }
    }
    return kExitOk;
  }
  auto emit = [&](const Result<Bytes>& r, std::string_view what) -> int {
    if (!r) return Report(r.error());
    if (!WriteFile(f.out, *r)) {
      PrintError(
          fmt::format("{} at {} all the same: it is committed and logged. A live node delivers "
                      "what it queued for partners; `accord outbox ls` lists that, and `accord "
                      "outbox export` writes it again",
                      what, when));
      return kExitIo;
    }
    // With `-` the package went to standard output, which must hold it alone.
    fmt::print(f.out == "-" ? stderr : stdout, "{} at {} → {}\n", what, when, f.out);
    return kExitOk;
  };
  if (!CanWrite(f.out)) return kExitIo;
  if (ran == f.release) {
    return emit(node.Release(f.id, f.to), fmt::format("released {} to {}", f.id, f.to));
  }
  if (ran == f.forward) {
    return emit(node.Forward(f.id, f.to), fmt::format("forwarded {} to {}", f.id, f.to));
  }
  if (ran == f.consent) {
    return emit(node.Consent(f.id, f.to),
                fmt::format("consented to the onward release of {} to {}", f.id, f.to));
  }
  if (ran == f.reclassify) {
    return emit(node.Reclassify(f.id, f.level),
                fmt::format("reclassified {} to {}", f.id, f.level));
  }
  if (ran == f.report) {
    return emit(node.Report(f.id, f.kind, f.text),
                fmt::format("reported a {} of {}", f.kind, f.id));
  }
  if (ran == f.destroy) {
    if (f.everywhere && f.out.empty()) {
      PrintError("--everywhere needs --out for the notice");
      return kExitUsage;
    }
    auto r = node.Destroy(f.id, f.everywhere ? DestroyScope::kEverywhere : DestroyScope::kOwnCopy);
    if (!r) return Report(r.error());
    if (f.everywhere) {
      return emit(r, fmt::format("destroyed {} here and ordered it destroyed everywhere", f.id));
    }
    fmt::print("destroyed this node's copy of {} at {}: its data key is erased\n", f.id, when);
    return kExitOk;
  }
  if (ran == f.receive) {
    const std::string out = !f.out.empty() ? f.out : (f.file == "-" ? "-" : f.file + ".receipt");
    std::FILE* status = out == "-" ? stderr : stdout;  // `-`: the receipt alone on stdout
    auto bytes = ReadInputFile(f.file, MaxEnvelopeBytes(f.max_payload),
                               "the largest package for --max-payload");
    if (!bytes) return kExitIo;
    // Where the receipt goes is checked before the package or notice is taken, which cannot be
    // undone. A receipt gives none (nor does what is not an envelope, which Receive refuses).
    auto kind = InspectEnvelope(AsBytes(*bytes), bytes->size());
    if (kind && kind->kind != "receipt" && (!CanWrite(out) || InsideHome(out, f.home))) {
      if (InsideHome(out, f.home)) {
        PrintError(fmt::format("cannot write `{}`: inside the home", out));
      }
      PrintError("nothing received; give --receipt-out FILE where the receipt can be written");
      return kExitIo;
    }
    auto r = node.Receive(AsBytes(*bytes));
    if (!r && r.error().code == Code::kAlreadyExists) {
      // Received before (its receipt lost, say): nothing is applied again, and the receipt
      // given then is written again, as a live node answers a delivery made twice.
      auto info = InspectEnvelope(AsBytes(*bytes), bytes->size());
      auto stored = info ? node.StoredReceipt(info->signer, info->id) : Result<Bytes>(Bytes());
      if (!info || !stored) return Report(r.error());
      fmt::print(status, "already received before, nothing applied again: {}\n",
                 OneLine(r.error().message));
      if (!WriteFile(out, *stored)) return kExitIo;
      if (out != "-") fmt::print(status, "the receipt given then → {}\n", out);
      return kExitOk;
    }
    if (!r) return Report(r.error());
    fmt::print(status, "accepted at {}: {}\n", when, OneLine(r->summary));
    if (!r->receipt.empty()) {
      if (!WriteFile(out, r->receipt)) {
        PrintError(fmt::format("accepted all the same; receiving {} again{} writes its receipt",
                               f.file == "-" ? "the same package" : "`" + f.file + "`",
                               f.out.empty() ? "" : " with --receipt-out `" + f.out + "`"));
        return kExitIo;
      }
      if (out != "-") fmt::print(status, "receipt → {}\n", out);
    }
    return kExitOk;
  }
  if (ran == f.subject_add) {
    auto s = node.AddSubject(SubjectRecord{f.subject_id, f.clearance, SplitList(f.need_to_know),
                                           SplitList(f.compartments)});
    if (!s) return Report(s.error());
    fmt::print("subject {} ({} {})\n", f.subject_id, node.party(), f.clearance);
    return kExitOk;
  }
  if (ran == f.subject_remove) {
    if (auto s = node.RemoveSubject(f.subject_id); !s) return Report(s.error());
    fmt::print("removed subject {} of {}\n", f.subject_id, node.party());
    return kExitOk;
  }
  if (ran == f.subject_ls) {
    auto list = node.store().ListSubjects();
    if (!list) return Report(list.error());
    for (const auto& s : *list) {
      fmt::print("{:<16} {} {}  need-to-know {}  compartments {}\n", s.id, node.party(),
                 s.clearance, Joined(s.need_to_know), Joined(s.compartments));
    }
    return kExitOk;
  }
  if (ran == f.export_public) {
    const std::string text = node.ExportPublic();
    return WriteFile(f.out.empty() ? "-" : f.out, AsBytes(text)) ? kExitOk : kExitIo;
  }
  if (auto code = RunLog(node, ran)) {
    return *code;
  }
  if (ran == f.outbox_ls) return RunOutboxList(node, f.outbox_limit);
  if (ran == f.outbox_export) {
    if (!CanWrite(f.out)) return kExitIo;
    return RunOutboxExport(node, f.id, f.to, f.out);
  }
  if (ran == f.import_public) {
    auto text = ReadInputFile(f.file);
    if (!text) return kExitIo;
    auto party = node.ImportPublic(*text);
    if (!party) return Report(party.error());
    fmt::print("imported the public keys of {}\n", *party);
    return kExitOk;
  }
  return kExitUsage;
}

std::optional<int> NodeCommands::RunLog(Node& node, CLI::App* ran) {
  Flags& f = *flags_;
  if (ran == f.log_checkpoint) {
    auto cp = node.LogCheckpoint();
    if (!cp) return Report(cp.error());
    return WriteFile(f.out.empty() ? "-" : f.out, AsBytes(*cp)) ? kExitOk : kExitIo;
  }
  if (ran == f.log_key) {
    fmt::print("{}\n", node.LogVerifierKey());
    return kExitOk;
  }
  if (ran == f.log_show) {
    auto size = node.LogSize();
    if (!size) return Report(size.error());
    if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());
    const uint64_t from = std::min(f.from, *size);
    const uint64_t count = f.count == 0 ? *size - from : std::min(f.count, *size - from);
    auto entries = node.LogEntries(from, count);
    if (!entries) return Report(entries.error());
    for (uint64_t i = 0; i < entries->size(); ++i) {
      const Bytes& e = (*entries)[i];
      const std::string_view text(reinterpret_cast<const char*>(e.data()), e.size());
      if (f.json) {
        fmt::print("{{\"index\":{},\"leaf_hash\":\"{}\",\"entry\":{}}}\n", from + i,
                   merkle::ToHex(merkle::LeafHash(e)), text);
      } else {
        // An entry holds what partners sent (ids, a report's text): one line, nothing a terminal
        // acts on (decision #129).
        fmt::print("{:>6}  {}\n", from + i, OneLine(text));
      }
    }
    return kExitOk;
  }
  if (ran == f.log_prove) {
    auto size = node.LogSize();
    if (!size) return Report(size.error());
    if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());
    const uint64_t tree = f.size == 0 ? *size : f.size;
    auto proof = node.LogInclusionProof(f.index, tree);
    if (!proof) return Report(proof.error());
    auto root = node.LogRoot(tree);
    if (!root) return Report(root.error());
    auto entry = node.LogEntries(f.index, 1);
    if (!entry) return Report(entry.error());
    std::vector<std::string> hex;
    for (const auto& h : *proof) hex.push_back(merkle::ToHex(h));
    // With `--entry-out -` the entry alone goes to standard output, the proof to stderr.
    fmt::print(f.out == "-" ? stderr : stdout,
               "index {}\nsize {}\nroot {}\nleaf_hash {}\nproof {}\n", f.index, tree,
               merkle::ToHex(*root), merkle::ToHex(merkle::LeafHash(entry->front())),
               fmt::join(hex, ","));
    if (!f.out.empty() && !WriteFile(f.out, entry->front())) return kExitIo;
    return kExitOk;
  }
  if (ran == f.log_consistency) {
    if (f.from_sizes.size() > merkle::kMaxConsistencyProofs) {
      PrintError(fmt::format("--from: at most {} sizes", merkle::kMaxConsistencyProofs));
      return kExitUsage;
    }
    auto size = node.LogSize();
    if (!size) return Report(size.error());
    if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());
    const uint64_t to = f.to_size == 0 ? *size : f.to_size;
    auto root = node.LogRoot(to);
    if (!root) return Report(root.error());
    merkle::ConsistencyProofs proofs{to, *root, {}};
    for (const uint64_t from : f.from_sizes) {
      auto proof = node.LogConsistencyProof(from, to);
      if (!proof) return Report(proof.error());
      proofs.proofs.push_back({from, std::move(*proof)});
    }
    if (f.json) {
      fmt::print("{}\n", merkle::EncodeConsistencyProofs(proofs));
      return kExitOk;
    }
    for (const merkle::ConsistencyProofs::Proof& p : proofs.proofs) {
      auto root1 = node.LogRoot(p.from);
      if (!root1) return Report(root1.error());
      std::vector<std::string> hex;
      for (const auto& h : p.proof) hex.push_back(merkle::ToHex(h));
      fmt::print("{}size1 {}\nsize2 {}\nroot1 {}\nroot2 {}\nproof {}\n",
                 &p == &proofs.proofs.front() ? "" : "\n", p.from, to, merkle::ToHex(*root1),
                 merkle::ToHex(*root), fmt::join(hex, ","));
    }
    return kExitOk;
  }
  if (ran == f.log_verify) {
    std::vector<std::string> signed_checkpoints;
    for (const std::string& path : f.own_checkpoints) {
      auto text = ReadInputFile(path);
      if (!text) return kExitIo;
      signed_checkpoints.push_back(std::move(*text));
    }
    auto checked = node.VerifyLog(signed_checkpoints, f.own_checkpoints);
    if (!checked) return Report(checked.error());
    if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());  // as above
    auto root = node.LogRoot(*checked);
    if (!root) return Report(root.error());
    fmt::print("log verified: {} entries, every hash recomputed; root {}\n", *checked,
               merkle::ToHex(*root));
    if (!signed_checkpoints.empty()) {
      fmt::print("the entries lead to the root of each of the {} checkpoint(s) given\n",
                 signed_checkpoints.size());
    }
    return kExitOk;
  }
  if (ran == f.log_witness) {
    auto checkpoint = ReadInputFile(f.file);
    if (!checkpoint) return kExitIo;
    auto proof = merkle::ProofFromHex(f.proof);
    if (!proof) {
      PrintError(fmt::format("--proof: {}", proof.error().message));
      return kExitUsage;
    }
    // Without a proof, the checkpoint is the first cosigned, or the size cosigned already.
    auto cosigned = node.WitnessCheckpoint(*checkpoint, *proof, WitnessLogging::kEveryCosignature,
                                           {}, f.proof_from.value_or(0));
    if (!cosigned) return Report(cosigned.error());
    if (!f.out.empty()) {
      if (!WriteFile(f.out, AsBytes(*cosigned))) return kExitIo;
      fmt::print(f.out == "-" ? stderr : stdout,
                 "checkpoint consistent with the last one cosigned; cosigned → {}\n", f.out);
    } else {
      fmt::print("{}", *cosigned);
    }
    return kExitOk;
  }
  if (ran == f.log_evidence) {
    auto evidence = node.ForkEvidence();
    if (!evidence) return Report(evidence.error());
    // The notes are a partner's text: each of their lines printed as OneLine makes it safe.
    const auto lines = [](std::string_view note) {
      std::string out;
      for (size_t end; (end = note.find('\n')) != std::string_view::npos;) {
        out += OneLine(note.substr(0, end)) + "\n";
        note.remove_prefix(end + 1);
      }
      return out + OneLine(note);
    };
    for (const auto& e : *evidence) {
      fmt::print("{} at {}: {}\n-- last cosigned:\n{}-- contradicted by:\n{}\n", OneLine(e.origin),
                 FormatInstant(e.at), OneLine(e.reason), lines(e.earlier), lines(e.later));
    }
    if (evidence->empty()) fmt::print("no evidence: no partner's log was caught rewritten\n");
    return kExitOk;
  }
  if (ran == f.log_shown) return ProveShown(node);
  return std::nullopt;
}

int NodeCommands::ProveShown(Node& node) {
  const Flags& f = *flags_;
  auto cosigned = node.LastCosigned(f.party);
  if (!cosigned) return Report(cosigned.error());
  auto left = node.CountUnprovedCheckpoints(f.party);
  if (!left) return Report(left.error());
  if (!*cosigned) {
    const std::string why = fmt::format(
        "{}: this node has cosigned no checkpoint of its log, so the {} checkpoint(s) it showed "
        "as evidence wait: witness one first (`accord log witness`)",
        f.party, *left);
    if (!f.file.empty()) {
      PrintError(why);
      return kExitFailed;
    }
    fmt::print("{}\n", why);
    return kExitOk;
  }
  const Node::Cosigned to = **cosigned;
  // Those a proof to the checkpoint cosigned last can prove, smallest first: as many as one
  // document of proofs holds.
  auto shown = node.UnprovedCheckpoints(f.party, to.size, merkle::kMaxConsistencyProofs);
  if (!shown) return Report(shown.error());
  if (f.file.empty()) {
    fmt::print(
        "{}: {} checkpoint(s) of its log shown as evidence and not yet proved; the one cosigned "
        "last has {} entries\n",
        f.party, *left, to.size);
    std::vector<uint64_t> sizes;  // distinct, ascending
    for (const ShownCheckpointRecord& c : *shown) {
      fmt::print("size {} root {} shown at {}\n", c.size, merkle::ToHex(c.root),
                 FormatInstant(c.at));
      if (sizes.empty() || sizes.back() != c.size) sizes.push_back(c.size);
    }
    if (*left > shown->size()) {
      fmt::print(
          "{} more: larger than the checkpoint cosigned last (witness a newer one), or after the "
          "first {} listed (prove these first)\n",
          *left - shown->size(), shown->size());
    }
    if (!sizes.empty()) {
      fmt::print(
          "to prove them, ask {} for `accord log consistency --from {} --to {} --json` and run "
          "this again with --proofs FILE\n",
          f.party, fmt::join(sizes, ","), to.size);
    }
    return kExitOk;
  }

  auto text = ReadInputFile(f.file);
  if (!text) return kExitIo;
  auto proofs = merkle::DecodeConsistencyProofs(*text);
  if (!proofs) {
    PrintError(fmt::format("{}: {}", f.file, proofs.error().message));
    return kExitFailed;
  }
  if (proofs->to != to.size || proofs->root != to.root) {
    PrintError(fmt::format(
        "{}: proofs to a checkpoint of {} entries with root {}, but the one of {}'s log cosigned "
        "last has {} entries with root {}: ask {} for proofs --to {}",
        f.file, proofs->to, merkle::ToHex(proofs->root), f.party, to.size, merkle::ToHex(to.root),
        f.party, to.size));
    return kExitFailed;
  }
  std::map<uint64_t, const std::vector<merkle::Hash>*> by_size;
  for (const merkle::ConsistencyProofs::Proof& p : proofs->proofs) {
    const auto [it, added] = by_size.emplace(p.from, &p.proof);
    if (!added && *it->second != p.proof) {
      PrintError(fmt::format("{}: two different proofs from {} entries", f.file, p.from));
      return kExitFailed;
    }
  }
  std::vector<Node::CheckpointProof> items;
  std::vector<uint64_t> missing;     // sizes the document has no proof for
  std::vector<std::string> refused;  // not connected, and left unproved (no --record-forks)
  for (const ShownCheckpointRecord& c : *shown) {
    std::vector<merkle::Hash> proof;  // none for the size cosigned: the roots are compared
    if (c.size != to.size) {
      const auto it = by_size.find(c.size);
      if (it == by_size.end()) {
        if (missing.empty() || missing.back() != c.size) missing.push_back(c.size);
        continue;
      }
      proof = *it->second;
    }
    if (!f.record_forks) {
      auto connected = merkle::VerifyConsistency(c.size, to.size, proof, c.root, to.root);
      if (!connected) {
        refused.push_back(fmt::format("the checkpoint of {} entries with root {}: {}", c.size,
                                      merkle::ToHex(c.root), connected.error().message));
        continue;
      }
    }
    items.push_back({c, std::move(proof)});
  }
  auto forks = node.ProveCheckpoints(to.size, to.root, items);
  if (!forks) return Report(forks.error());
  auto unproved = node.CountUnprovedCheckpoints(f.party);
  if (!unproved) return Report(unproved.error());
  fmt::print(
      "{}: {} checkpoint(s) proved consistent with the one of {} entries cosigned, {} still "
      "unproved\n",
      f.party, items.size() - forks->size(), to.size, *unproved);
  if (!missing.empty()) {
    fmt::print("{} has no proof from {} entries: those stay unproved\n", f.file,
               fmt::join(missing, ","));
  }
  for (const std::string& fork : *forks) {
    fmt::print("FORK: {}'s log: {} (the evidence is kept: `accord log evidence`)\n", f.party, fork);
  }
  for (const std::string& why : refused) fmt::print("NOT CONNECTED: {}\n", why);
  if (!refused.empty()) {
    fmt::print(
        "those stay unproved: if {} is {}'s own answer, its log has a branch; run again with "
        "--record-forks to keep the evidence and log the refusal\n",
        f.file, f.party);
  }
  return forks->empty() && refused.empty() ? kExitOk : kExitIntegrity;
}

}  // namespace accord::cli
