// C2SP signed notes with Ed25519, tlog checkpoints and witnessing, on OpenSSL.
#include "accord/note.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <set>

namespace accord::note {
namespace {

constexpr std::string_view kDash = "\xE2\x80\x94 ";  // U+2014 EM DASH, then a space
constexpr uint8_t kEd25519 = 0x01;
constexpr size_t kMaxSignatures = 64;
constexpr size_t kEd25519KeySize = 32;
constexpr size_t kEd25519SignatureSize = 64;

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

std::string Base64(std::span<const uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Standard base64 with padding, strictly: no whitespace, length a multiple of four.
std::optional<std::vector<uint8_t>> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 16384) return std::nullopt;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='))
      return std::nullopt;
  }
  const size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  if (text.substr(0, text.size() - padding).find('=') != std::string_view::npos)
    return std::nullopt;
  // A signer key's seed comes this way too: every copy that is dropped is wiped.
  std::vector<uint8_t> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  const size_t size = static_cast<size_t>(n) - padding;
  // Reject non-canonical encodings (stray bits in the last character).
  std::string again = Base64(std::span<const uint8_t>(out.data(), size));
  const bool canonical = again == text;
  OPENSSL_cleanse(again.data(), again.size());
  if (!canonical) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  OPENSSL_cleanse(out.data() + size, out.size() - size);  // what resize drops stays allocated
  out.resize(size);
  return out;
}

bool ValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c == '+' || c == 0x7F) return false;
  }
  return true;
}

// UTF-8 (well-formed, shortest form) without control characters other than newline.
bool ValidText(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n') || c == 0x7F) return false;
      ++i;
      continue;
    }
    const int len = c >= 0xF0 && c <= 0xF4   ? 4
                    : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xC2 && c <= 0xDF ? 2
                                             : 0;  // 0x80-0xC1 and 0xF5-0xFF never lead
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) return false;
    uint32_t cp = c & (0xFF >> (len + 1));
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += static_cast<size_t>(len);
  }
  return true;
}

std::optional<uint32_t> ParseHex32(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// A verifier or signer key without its "PRIVATE+KEY+" prefix.
struct ParsedKey {
  std::string name;
  uint32_t id = 0;
  std::vector<uint8_t> bytes;  // the public key or the seed, without the type byte
};

Result<ParsedKey> ParseKey(std::string_view key, std::string_view what) {
  // name+hexid+base64; the base64 may itself contain '+', so split at the first two.
  const size_t a = key.find('+');
  const size_t b = a == std::string_view::npos ? a : key.find('+', a + 1);
  if (b == std::string_view::npos)
    return Fail(Code::kInvalidArgument, fmt::format("malformed {}", what));
  const std::string_view name = key.substr(0, a);
  const auto id = ParseHex32(key.substr(a + 1, b - a - 1));
  auto bytes = Unbase64(key.substr(b + 1));
  if (!ValidKeyName(name) || !id || !bytes || bytes->size() != 1 + kEd25519KeySize ||
      (*bytes)[0] != kEd25519) {
    if (bytes) OPENSSL_cleanse(bytes->data(), bytes->size());
    return Fail(Code::kInvalidArgument, fmt::format("malformed {}", what));
  }
  // Without the type byte, in a vector of its own: erasing it in place would leave the last
  // byte beyond the size, where a wipe of the size would miss it.
  ParsedKey parsed{std::string(name), *id, std::vector<uint8_t>(bytes->begin() + 1, bytes->end())};
  OPENSSL_cleanse(bytes->data(), bytes->size());
  return parsed;
}

// Every signature by a known key (same name and id) must verify, and at least one must.
Status VerifySignatures(const Note& note, std::span<const Verifier> known) {
  bool verified = false;
  for (const Signature& s : note.signatures) {
    for (const Verifier& v : known) {
      if (v.name() != s.name || v.key_id() != s.key_id) continue;
      if (!v.Verify(note.text, s.bytes)) {
        return Fail(Code::kDataLoss, fmt::format("the signature of `{}` does not verify", s.name));
      }
      verified = true;
    }
  }
  if (!verified) return Fail(Code::kPermissionDenied, "no known key signed the note");
  return OkStatus();
}

}  // namespace

uint32_t KeyId(std::string_view name, std::span<const uint8_t> public_key) {
  std::string input(name);
  input += '\n';
  input += static_cast<char>(kEd25519);
  input.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  unsigned char digest[32];
  unsigned int n = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &n, EVP_sha256(), nullptr) != 1) std::abort();
  return uint32_t{digest[0]} << 24 | uint32_t{digest[1]} << 16 | uint32_t{digest[2]} << 8 |
         digest[3];
}

Result<Note> Parse(std::string_view message) {
  auto bad = [](std::string_view why) {
    return Fail(Code::kInvalidArgument, fmt::format("malformed note: {}", why));
  };
  if (message.size() > 1 << 20) return bad("larger than 1 MiB");
  if (!ValidText(message)) return bad("not UTF-8 text without control characters");
  if (!message.ends_with('\n')) return bad("it does not end in a newline");
  // The text ends at the last blank line.
  const size_t split = message.rfind("\n\n");
  if (split == std::string_view::npos) return bad("no blank line before the signatures");
  Note note;
  note.text = std::string(message.substr(0, split + 1));
  std::string_view rest = message.substr(split + 2);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (!line.starts_with(kDash))
      return bad("a signature line must start with an em dash and a space");
    line.remove_prefix(kDash.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos)
      return bad("a signature line needs a key name and a signature");
    const std::string_view name = line.substr(0, space);
    auto blob = Unbase64(line.substr(space + 1));
    if (!ValidKeyName(name) || !blob || blob->size() < 5) return bad("malformed signature line");
    if (note.signatures.size() == kMaxSignatures) return bad("too many signatures");
    Signature sig;
    sig.name = std::string(name);
    sig.key_id = uint32_t{(*blob)[0]} << 24 | uint32_t{(*blob)[1]} << 16 |
                 uint32_t{(*blob)[2]} << 8 | (*blob)[3];
    // One signature per key, as Go's sumdb/note requires: a second one by the same name and id
    // would be a second, possibly unchecked, statement under one key.
    for (const Signature& earlier : note.signatures) {
      if (earlier.name == sig.name && earlier.key_id == sig.key_id) {
        return bad(fmt::format("two signatures by the key `{}`", sig.name));
      }
    }
    sig.bytes.assign(blob->begin() + 4, blob->end());
    note.signatures.push_back(std::move(sig));
  }
  if (note.signatures.empty()) return bad("no signatures");
  return note;
}

std::string Format(const Note& note) {
  std::string out = note.text + "\n";
  for (const Signature& s : note.signatures) {
    std::vector<uint8_t> blob = {
        static_cast<uint8_t>(s.key_id >> 24), static_cast<uint8_t>(s.key_id >> 16),
        static_cast<uint8_t>(s.key_id >> 8), static_cast<uint8_t>(s.key_id)};
    blob.insert(blob.end(), s.bytes.begin(), s.bytes.end());
    out += fmt::format("{}{} {}\n", kDash, s.name, Base64(blob));
  }
  return out;
}

Verifier Verifier::FromParts(std::string name, std::vector<uint8_t> public_key) {
  Verifier v;
  v.key_id_ = KeyId(name, public_key);
  v.name_ = std::move(name);
  v.public_key_ = std::move(public_key);
  v.key_.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, v.public_key_.data(),
                                           v.public_key_.size()),
               PkeyDeleter());
  return v;
}

Result<Verifier> Verifier::FromPublicKey(std::string_view name,
                                         std::span<const uint8_t> public_key) {
  if (!ValidKeyName(name) || public_key.size() != kEd25519KeySize) {
    return Fail(Code::kInvalidArgument, "a verifier needs a key name and a 32-byte Ed25519 key");
  }
  return FromParts(std::string(name), std::vector<uint8_t>(public_key.begin(), public_key.end()));
}

Result<Verifier> Verifier::FromVerifierKey(std::string_view vkey) {
  ACCORD_ASSIGN_OR_RETURN(ParsedKey parsed, ParseKey(vkey, "verifier key"));
  Verifier v = FromParts(std::move(parsed.name), std::move(parsed.bytes));
  if (v.key_id_ != parsed.id) {
    return Fail(Code::kInvalidArgument,
                fmt::format("verifier key `{}`: the key id does not match the key", v.name_));
  }
  return v;
}

bool Verifier::Verify(std::string_view text, std::span<const uint8_t> signature) const {
  if (signature.size() != kEd25519SignatureSize) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!key_ || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                          reinterpret_cast<const unsigned char*>(text.data()), text.size()) == 1;
}

std::string Verifier::VerifierKey() const {
  std::vector<uint8_t> blob = {kEd25519};
  blob.insert(blob.end(), public_key_.begin(), public_key_.end());
  return fmt::format("{}+{:08x}+{}", name_, key_id_, Base64(blob));
}

struct Signer::Key {
  PkeyPtr pkey;
  std::vector<uint8_t> public_key;
};

Signer::Signer(std::string name, std::unique_ptr<Key> key)
    : name_(std::move(name)), key_(std::move(key)) {
  key_id_ = KeyId(name_, key_->public_key);
}
Signer::Signer(Signer&&) noexcept = default;
Signer& Signer::operator=(Signer&&) noexcept = default;
Signer::~Signer() = default;

Result<Signer> Signer::Generate(std::string_view name) {
  if (!ValidKeyName(name)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("key name `{}` must be non-empty, without spaces or `+`", name));
  }
  uint8_t seed[kEd25519KeySize];
  if (RAND_priv_bytes(seed, sizeof(seed)) != 1) {
    OPENSSL_cleanse(seed, sizeof(seed));
    return Fail(Code::kUnavailable, "no randomness available");
  }
  auto key = std::make_unique<Key>();
  key->pkey.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed)));
  OPENSSL_cleanse(seed, sizeof(seed));
  size_t n = kEd25519KeySize;
  key->public_key.resize(n);
  if (!key->pkey || EVP_PKEY_get_raw_public_key(key->pkey.get(), key->public_key.data(), &n) != 1) {
    return Fail(Code::kInternal, "cannot create an Ed25519 key");
  }
  return Signer(std::string(name), std::move(key));
}

Result<Signer> Signer::FromSeed(std::string_view name, std::span<const uint8_t> seed) {
  if (!ValidKeyName(name) || seed.size() != kEd25519KeySize) {
    return Fail(Code::kInvalidArgument, "a signer needs a key name and a 32-byte Ed25519 seed");
  }
  auto key = std::make_unique<Key>();
  key->pkey.reset(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  size_t n = kEd25519KeySize;
  key->public_key.resize(n);
  if (!key->pkey || EVP_PKEY_get_raw_public_key(key->pkey.get(), key->public_key.data(), &n) != 1) {
    return Fail(Code::kInvalidArgument, "malformed Ed25519 seed");
  }
  return Signer(std::string(name), std::move(key));
}

Result<Signer> Signer::FromSignerKey(std::string_view skey) {
  constexpr std::string_view kPrefix = "PRIVATE+KEY+";
  if (!skey.starts_with(kPrefix)) return Fail(Code::kInvalidArgument, "malformed signer key");
  skey.remove_prefix(kPrefix.size());
  ACCORD_ASSIGN_OR_RETURN(ParsedKey parsed, ParseKey(skey, "signer key"));
  auto key = std::make_unique<Key>();
  key->pkey.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, parsed.bytes.data(),
                                               parsed.bytes.size()));
  OPENSSL_cleanse(parsed.bytes.data(), parsed.bytes.size());
  size_t n = kEd25519KeySize;
  key->public_key.resize(n);
  if (!key->pkey || EVP_PKEY_get_raw_public_key(key->pkey.get(), key->public_key.data(), &n) != 1) {
    return Fail(Code::kInvalidArgument, "malformed signer key");
  }
  Signer signer(std::move(parsed.name), std::move(key));
  if (signer.key_id_ != parsed.id) {
    return Fail(Code::kInvalidArgument, "signer key: the key id does not match the key");
  }
  return signer;
}

Signature Signer::Sign(std::string_view text) const {
  Signature sig{name_, key_id_, std::vector<uint8_t>(kEd25519SignatureSize)};
  size_t n = sig.bytes.size();
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.bytes.data(), &n,
                     reinterpret_cast<const unsigned char*>(text.data()), text.size()) != 1 ||
      n != kEd25519SignatureSize) {
    std::abort();  // Ed25519 signing fails only when memory runs out
  }
  return sig;
}

Verifier Signer::verifier() const { return Verifier::FromParts(name_, key_->public_key); }

Result<Note> Open(std::string_view message, std::span<const Verifier> known) {
  ACCORD_ASSIGN_OR_RETURN(Note note, Parse(message));
  ACCORD_RETURN_IF_ERROR(VerifySignatures(note, known));
  return note;
}

Result<std::string> Sign(std::string_view text, std::span<const Signer* const> signers) {
  if (!text.ends_with('\n') || !ValidText(text)) {
    return Fail(Code::kInvalidArgument,
                "a note's text is UTF-8 without control characters and ends in a newline");
  }
  Note note{std::string(text), {}};
  for (const Signer* s : signers) note.signatures.push_back(s->Sign(text));
  return Format(note);
}

std::string CheckpointText(const Checkpoint& c) {
  std::string out = fmt::format("{}\n{}\n{}\n", c.origin, c.size, Base64(c.root));
  for (const std::string& e : c.extensions) out += e + "\n";
  return out;
}

Result<Checkpoint> ParseCheckpoint(std::string_view text) {
  auto bad = [](std::string_view why) {
    return Fail(Code::kInvalidArgument, fmt::format("malformed checkpoint: {}", why));
  };
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return bad("it does not end in a newline");
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  if (lines.size() < 3) return bad("it needs an origin, a size and a root hash");
  Checkpoint c;
  c.origin = std::string(lines[0]);
  if (c.origin.empty()) return bad("empty origin");
  const std::string_view size = lines[1];
  auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), c.size);
  if (size.empty() || ec != std::errc() || p != size.data() + size.size() ||
      (size.size() > 1 && size[0] == '0')) {
    return bad("the size is not a decimal number");
  }
  auto root = Unbase64(lines[2]);
  if (!root || root->size() != merkle::kHashSize)
    return bad("the root is not a base64 SHA-256 hash");
  std::copy(root->begin(), root->end(), c.root.begin());
  if (c.size == 0 && c.root != merkle::EmptyRoot()) {
    return bad("a tree of size 0 has the empty tree's root, SHA-256 of nothing");
  }
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return bad("empty extension line");
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

void Witness::Watch(std::string origin, Verifier log_key) {
  logs_.insert_or_assign(std::move(origin), Log{std::move(log_key), std::nullopt, {}});
}

namespace {

// `signed_note` with only the signature lines of the key named `name`, each once: what a
// witness stored is its own record, whose other lines it never checked (a build before #113 kept
// them, and could keep one twice, which Parse now refuses).
std::string KeepSignaturesOf(std::string_view signed_note, std::string_view name) {
  const size_t split = signed_note.rfind("\n\n");
  if (split == std::string_view::npos) return std::string(signed_note);
  std::string out(signed_note.substr(0, split + 2));
  std::set<std::string_view> kept;
  std::string_view rest = signed_note.substr(split + 2);
  const std::string prefix = std::string(kDash) + std::string(name) + " ";
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line =
        rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
    rest.remove_prefix(line.size());
    if (line.starts_with(prefix) && kept.insert(line).second) out += line;
  }
  return out;
}

}  // namespace

Status Witness::Resume(std::string origin, Verifier log_key, std::string_view signed_checkpoint) {
  const Verifier keys[] = {log_key};
  const std::string own = KeepSignaturesOf(signed_checkpoint, log_key.name());
  ACCORD_ASSIGN_OR_RETURN(Note note, Open(own, keys));
  ACCORD_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(note.text));
  if (c.origin != origin) {
    return Fail(Code::kDataLoss,
                fmt::format("the stored checkpoint is for `{}`, not `{}`", c.origin, origin));
  }
  logs_.insert_or_assign(std::move(origin), Log{std::move(log_key), std::move(c), own});
  return OkStatus();
}

Result<std::string> Witness::Cosign(std::string_view signed_checkpoint,
                                    std::span<const merkle::Hash> proof) {
  ACCORD_ASSIGN_OR_RETURN(Note note, Parse(signed_checkpoint));
  ACCORD_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(note.text));
  auto it = logs_.find(c.origin);
  if (it == logs_.end()) {
    return Fail(Code::kNotFound, fmt::format("this witness does not watch the log `{}`", c.origin));
  }
  Log& log = it->second;
  if (auto signed_by_log = VerifySignatures(note, std::span(&log.key, 1)); !signed_by_log) {
    // Not the log's statement, so no evidence against it either.
    return Fail(Code::kPermissionDenied,
                fmt::format("the checkpoint of `{}` is not signed by its key: {}", c.origin,
                            signed_by_log.error().message));
  }
  if (log.checkpoint) {
    const Checkpoint& old = *log.checkpoint;
    if (c.size < old.size) {
      // An earlier checkpoint of the same log is no contradiction: nothing to keep. (A log that
      // gives it as its latest has been rolled back; the caller knows which it asked for.)
      return Fail(Code::kFailedPrecondition,
                  fmt::format("the checkpoint of `{}` has {} entries, older than the one of {} "
                              "cosigned already",
                              c.origin, c.size, old.size));
    }
    // Only a proof that can be checked is evidence: one whose shape alone is wrong for the two
    // sizes (a proof at the same size, from size 0, or of another length) may be a caller's
    // mistake as well as the log's, and proves nothing against the log.
    Status consistent = OkStatus();
    if (c.size == old.size) {
      // The roots decide: another root at the same size is a fork, whatever proof came with it.
      if (c.root == old.root && !proof.empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("the checkpoint of `{}` has the size and root cosigned already, "
                                "which need no consistency proof, but {} hashes came",
                                c.origin, proof.size()));
      }
      consistent = merkle::VerifyConsistency(old.size, c.size, {}, old.root, c.root);
    } else if (const size_t want = merkle::ConsistencyProofSize(old.size, c.size);
               proof.size() != want) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("a consistency proof of `{}` from {} to {} entries has {} hashes, "
                              "not {}",
                              c.origin, old.size, c.size, proof.size(), want));
    } else {
      consistent = merkle::VerifyConsistency(old.size, c.size, proof, old.root, c.root);
    }
    if (!consistent) {
      // Both checkpoints carry the log's valid signature: keep them as evidence.
      forks_.push_back(
          Fork{log.signed_note, std::string(signed_checkpoint), consistent.error().message});
      return Fail(Code::kDataLoss,
                  fmt::format("log `{}` is not consistent with its checkpoint of size {}: {}",
                              c.origin, old.size, consistent.error().message));
    }
  }
  // Only the log's signature, verified above, and this witness's own: the lines of other keys
  // (another witness's cosignature, or this one's from before) are not checked here, and this
  // witness does not pass on what it has not checked.
  std::erase_if(note.signatures, [&](const Signature& s) {
    return s.name != log.key.name() || s.key_id != log.key.key_id();
  });
  if (signer_.name() != log.key.name() || signer_.key_id() != log.key.key_id()) {
    note.signatures.push_back(signer_.Sign(note.text));
  }
  log.checkpoint = std::move(c);
  log.signed_note = Format(note);
  return log.signed_note;
}

std::optional<std::string> Witness::Latest(std::string_view origin) const {
  auto it = logs_.find(origin);
  if (it == logs_.end() || !it->second.checkpoint) return std::nullopt;
  return it->second.signed_note;
}

}  // namespace accord::note
