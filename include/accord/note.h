// accord/note.h — signed notes and checkpoints of the audit log (C2SP signed-note,
// tlog-checkpoint), and a witness that cosigns a partner's checkpoints only after a consistency
// proof.
//
// A signed note is a UTF-8 text ending in a newline, a blank line, and signature lines
// "— <key name> base64(key id || signature)". Keys are Ed25519 (signature type 0x01); the key id is
// SHA-256(name || 0x0A || 0x01 || public key)[:4]. Verifier keys are written
// "<name>+<key id hex>+base64(0x01 || public key)", signer keys
// "PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || seed)", as Go's sumdb/note does.
//
// A checkpoint's text is the log's origin, its size in decimal and its root in base64, one per
// line, then optional extension lines.
//
// Verification failures are kDataLoss (or kPermissionDenied for a note no known key signed);
// malformed input is kInvalidArgument.
//
// Thread safety: Signer and Verifier are immutable and may be shared; Witness is not thread-safe.
#ifndef ACCORD_NOTE_H_
#define ACCORD_NOTE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/merkle.h"
#include "accord/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace accord::note {

struct Signature {
  std::string name;
  uint32_t key_id = 0;
  std::vector<uint8_t> bytes;  // the signature without the key id
};

struct Note {
  std::string text;  // includes the final newline
  std::vector<Signature> signatures;
};

// Splits a signed note into text and signatures and checks the format (UTF-8, no control
// characters but newline, well-formed signature lines, at most 64 of them, no two by the same key
// name and id). Verifies nothing.
[[nodiscard]] Result<Note> Parse(std::string_view message);
// The wire form: text, blank line, one line per signature.
[[nodiscard]] std::string Format(const Note& note);

// The key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian.
[[nodiscard]] uint32_t KeyId(std::string_view name, std::span<const uint8_t> public_key);

class Verifier {
 public:
  // Parses "<name>+<hex id>+base64(0x01 || 32-byte key)"; the id must match the key.
  [[nodiscard]] static Result<Verifier> FromVerifierKey(std::string_view vkey);
  // A verifier named `name` for a raw 32-byte Ed25519 public key (kInvalidArgument otherwise).
  [[nodiscard]] static Result<Verifier> FromPublicKey(std::string_view name,
                                                      std::span<const uint8_t> public_key);
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] uint32_t key_id() const { return key_id_; }
  [[nodiscard]] bool Verify(std::string_view text, std::span<const uint8_t> signature) const;
  [[nodiscard]] std::string VerifierKey() const;

 private:
  friend class Signer;
  static Verifier FromParts(std::string name, std::vector<uint8_t> public_key);

  std::string name_;
  uint32_t key_id_ = 0;
  std::vector<uint8_t> public_key_;
  // OpenSSL's key for public_key_, made once; null if it is not a 32-byte key (Verify fails).
  std::shared_ptr<evp_pkey_st> key_;
};

class Signer {
 public:
  // A new random Ed25519 key named `name` (no spaces, no '+').
  [[nodiscard]] static Result<Signer> Generate(std::string_view name);
  // Parses "PRIVATE+KEY+<name>+<hex id>+base64(0x01 || 32-byte seed)"; the id must match.
  [[nodiscard]] static Result<Signer> FromSignerKey(std::string_view skey);
  // A signer named `name` for a raw 32-byte Ed25519 seed, e.g. a node's identity key.
  [[nodiscard]] static Result<Signer> FromSeed(std::string_view name,
                                               std::span<const uint8_t> seed);
  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;
  ~Signer();

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] uint32_t key_id() const { return key_id_; }
  [[nodiscard]] Signature Sign(std::string_view text) const;
  [[nodiscard]] Verifier verifier() const;

 private:
  struct Key;
  Signer(std::string name, std::unique_ptr<Key> key);
  std::string name_;
  uint32_t key_id_ = 0;
  std::unique_ptr<Key> key_;  // the OpenSSL key; OpenSSL wipes it when freed
};

// Parses `message` and verifies it: every signature by a known key (same name and id) must
// verify, and at least one must. Signatures by unknown keys are ignored, as C2SP requires.
[[nodiscard]] Result<Note> Open(std::string_view message, std::span<const Verifier> known);
// Signs `text` (which must end in a newline) with each signer.
[[nodiscard]] Result<std::string> Sign(std::string_view text,
                                       std::span<const Signer* const> signers);

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  merkle::Hash root{};
  std::vector<std::string> extensions;
};
[[nodiscard]] std::string CheckpointText(const Checkpoint& c);
// kInvalidArgument for a malformed checkpoint, including one of size 0 whose root is not
// merkle::EmptyRoot().
[[nodiscard]] Result<Checkpoint> ParseCheckpoint(std::string_view text);

// Evidence that a log rewrote or truncated its history: two checkpoints, both validly signed by
// the log, that no consistency proof connects.
struct Fork {
  std::string earlier;  // the last checkpoint this witness cosigned (the log's and its signatures)
  std::string later;    // the checkpoint that contradicts it, as the log sent it
  std::string reason;
};

// Keeps the latest checkpoint seen from each log it watches, and cosigns a new one only after
// verifying the log's signature and a consistency proof from the last one it cosigned.
class Witness {
 public:
  explicit Witness(Signer signer) : signer_(std::move(signer)) {}
  // Watches the log whose checkpoints `log_key` signs, with origin `origin`.
  void Watch(std::string origin, Verifier log_key);
  // Watches a log resuming from `signed_checkpoint`, the last one this witness cosigned (read
  // back from its own storage). kDataLoss unless the log's key signed it.
  [[nodiscard]] Status Resume(std::string origin, Verifier log_key,
                              std::string_view signed_checkpoint);

  // Checks `signed_checkpoint` against the last one seen from that log. On success returns the
  // checkpoint signed by the log's key and this witness's only: other signature lines are
  // dropped, as this witness cannot check them. One that the proof does not connect to the
  // last (another root at the same size, an edited or rewritten history) is refused with
  // kDataLoss and recorded in forks(): the only kDataLoss. One smaller than the last is refused
  // with kFailedPrecondition, one not signed by the log's key with kPermissionDenied, and a proof
  // whose shape is wrong for the two sizes (any proof at the same size and root, or one whose
  // length is not merkle::ConsistencyProofSize) with kInvalidArgument; none is evidence of
  // anything.
  [[nodiscard]] Result<std::string> Cosign(std::string_view signed_checkpoint,
                                           std::span<const merkle::Hash> consistency_proof);

  [[nodiscard]] const std::vector<Fork>& forks() const { return forks_; }
  // The last checkpoint cosigned for `origin`, as a signed note.
  [[nodiscard]] std::optional<std::string> Latest(std::string_view origin) const;

 private:
  struct Log {
    Verifier key;
    std::optional<Checkpoint> checkpoint;
    std::string signed_note;
  };
  Signer signer_;
  std::map<std::string, Log, std::less<>> logs_;
  std::vector<Fork> forks_;
};

}  // namespace accord::note

#endif  // ACCORD_NOTE_H_
