// The node's exchange formats: signed envelopes and the bodies they carry (docs/node.md).
//
//   envelope = {"format":"accord/1","kind":K,"signer":P,"body":B64(body),"signature":B64(sig)}
//   sig      = Ed25519 over "accord/1\n" K "\n" P "\n" body
//
// The body is JSON, parsed only after the signature checks out; its bytes are exactly what was
// signed, so re-encoding never changes meaning. Every parser here takes outside input: each
// returns kInvalidArgument with a clear message and never throws.
//
// Thread safety: plain functions.
#ifndef ACCORD_SRC_NODE_WIRE_H_
#define ACCORD_SRC_NODE_WIRE_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "accord/crypto.h"
#include "accord/status.h"
#include "accord/time.h"

namespace accord::node_internal {

inline constexpr std::string_view kFormat = "accord/1";
// The longest text a report notice carries: a partner refuses a longer one, so none is made.
inline constexpr size_t kMaxReportTextBytes = 64 << 10;
// The largest notice or receipt envelope, evidence included: only a package carries a payload,
// and a notice (a report's text at most) is far smaller. A larger one is refused before its
// signature is checked (decision #129).
inline constexpr size_t kMaxNoticeBytes = 1 << 20;

// The sender's proof that it logged what it sends: its signed checkpoint, the log entry, and
// the entry's inclusion proof. Outside the signed body (it is computed after the commit that
// logs the entry) and self-authenticating: the checkpoint is signed by the sender's key.
struct LogEvidence {
  std::string checkpoint;  // C2SP signed note
  uint64_t index = 0;
  Bytes entry;
  std::vector<std::array<uint8_t, 32>> proof;
};

struct Envelope {
  std::string kind;  // release forward consent reclassify destroy report receipt
  std::string signer;
  Bytes body;
  Bytes signature;
  std::optional<LogEvidence> log;
};

// Parses the envelope only (no signature check). `max_bytes` bounds the input.
[[nodiscard]] Result<Envelope> ParseEnvelope(ByteView bytes, size_t max_bytes);
// The bytes the signature covers.
[[nodiscard]] Bytes SignedMessage(std::string_view kind, std::string_view signer, ByteView body);
// Signs an envelope.
[[nodiscard]] Envelope SealEnvelope(std::string_view kind, std::string_view signer, ByteView body,
                                    const SigningKey& key);
// One line of JSON, newline-terminated.
[[nodiscard]] Bytes EncodeEnvelope(const Envelope& envelope);

// An object's label: what the AEAD binds and what a package carries.
struct Label {
  std::string id;
  std::string originator;
  std::string level;
  std::vector<std::string> topics;
  std::vector<std::string> compartments;
  std::vector<std::string> rel_to;
  int64_t version = 1;
  // The originator's commitment to the sealed content (ContentCommitment: a random salt, then the
  // payload), 64 lowercase hex digits (decision #109). Empty for objects made before it; in the
  // JSON and in EncodeLabel only when not empty.
  std::string commitment;
};
// The canonical encoding of a label (length-prefixed fields), used as associated data.
[[nodiscard]] Bytes EncodeLabel(const Label& label);
// The random salt at the start of an object's sealed content, before the payload (#109).
inline constexpr size_t kContentSaltBytes = 32;
// A label's commitment to `content` (the salt, then the payload): its SHA-256, in hex.
[[nodiscard]] std::string ContentCommitment(ByteView content);
// Whether `list` (a label's topics, compartments or markings, named `key`) is one a partner's
// node accepts in a package: at most 256 items, each 1 to 256 bytes. kInvalidArgument if not.
[[nodiscard]] Status CheckLabelList(std::string_view key, const std::vector<std::string>& list);

struct HistoryRelease {
  std::string to;
  Instant at;
  std::string agreement;
};

// Whether an envelope of `kind` carries a package (an information object on its way), not a
// notice or a receipt.
[[nodiscard]] inline bool IsPackageKind(std::string_view kind) {
  return kind == "release" || kind == "forward";
}

// A release or forward package.
struct PackageBody {
  std::string id;    // 32 hex digits, random
  std::string kind;  // release | forward
  std::string from;
  std::string to;
  Instant at;
  std::string agreement;
  Label label;
  std::string marking_party;
  std::string marking_level;
  // forward only: the release to `from` it rests on, the originator's log's proof of it (the
  // evidence that came with the release package, decision #85), and the originator's consent
  // notice.
  std::optional<HistoryRelease> held_release;
  std::optional<LogEvidence> held_log;
  Bytes consent;
  // forward only, when the label's version is newer than the one the consent names: the
  // originator's signed reclassification notice that made it (decision #84). Never empty when
  // present.
  Bytes reclassification;
  Bytes wrapped_key;  // the data key wrapped to `to` (WrapToParty)
  Bytes ciphertext;   // sealed under the data key with EncodeLabel(label) as associated data
};
[[nodiscard]] Bytes EncodePackageBody(const PackageBody& body);
[[nodiscard]] Result<PackageBody> ParsePackageBody(ByteView body);

// consent | reclassify | destroy | report
struct NoticeBody {
  std::string id;
  std::string kind;
  std::string object_id;
  std::string originator;
  std::string by;  // the issuing party: the originator, or the reporter for `report`
  Instant at;
  std::string to;              // consent: the third party
  std::optional<Label> label;  // consent: the object's label when consented (decision #84);
                               // none in consents given before it
  std::string level;           // reclassify: the new level
  int64_t version = 0;         // reclassify: the new version
  std::string report_kind;     // report: loss | compromise
  std::string text;            // report
};
[[nodiscard]] Bytes EncodeNoticeBody(const NoticeBody& body);
[[nodiscard]] Result<NoticeBody> ParseNoticeBody(std::string_view kind, ByteView body);

struct ReceiptBody {
  std::string package_id;
  std::string package_digest;  // hex SHA-256 of the envelope received
  std::string kind;            // of what was received
  std::string object_id;
  std::string from;  // who sent it
  std::string by;    // who received and signs
  Instant at;
};
[[nodiscard]] Bytes EncodeReceiptBody(const ReceiptBody& body);
[[nodiscard]] Result<ReceiptBody> ParseReceiptBody(ByteView body);

// Whether a forward's `label` is its originator's word (decision #84): the label the
// originator `consented` under, or a newer version of it with the originator's
// `reclassification` notice that made it (whose signature the caller has checked). Only the
// level and version ever change: the rest must equal the consented label's. kPermissionDenied
// for a label the originator did not give, kFailedPrecondition for one older than the consent's,
// kInvalidArgument for a notice beside the consented label (a sender never adds one).
[[nodiscard]] Status CheckForwardLabel(const Label& label, const Label& consented,
                                       const NoticeBody* reclassification);

// A node's public keys, as `accord keys export-public` writes them and a partner imports them:
//   {"format":"accord-public/1","party":P,"sign":B64(Ed25519),"wrap":B64(X25519)}
struct PublicKeys {
  std::string party;
  PublicKey sign{};
  PublicKey wrap{};
};
[[nodiscard]] std::string EncodePublicKeys(const PublicKeys& keys);  // one line, '\n' ended
// kInvalidArgument for anything else than such a file (the party is not checked against a
// policy, nor the keys for being points anyone can sign for).
[[nodiscard]] Result<PublicKeys> ParsePublicKeys(std::string_view text);

// Parses whatever an envelope of `kind` carries (for the fuzzer and for `accord inspect`).
[[nodiscard]] Status ParseAnyBody(std::string_view kind, ByteView body);

// 32 random hex digits.
[[nodiscard]] std::string NewId();

}  // namespace accord::node_internal

#endif  // ACCORD_SRC_NODE_WIRE_H_
