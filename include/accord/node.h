// accord/node.h — one party's node: its home, its keys, and every operation of an agreement.
//
// A home is a directory:
//
//   state.db          the store (store.h): objects sealed, their history, packages, receipts
//   keystore          the file key store (keystore.h), or pkcs11.conf naming a PKCS#11 token
//   identity.sealed   this party's Ed25519 and X25519 private keys, wrapped by the KEK
//   public.json       this party's public keys, as `accord keys export-public` prints them
//   policy/           a copy of the policy directory the home was created with
//   home.conf         party, clock (system | simulated), key store kind
//
// Every operation is decided by the engine (engine.h) at the node's current instant and is atomic:
// it either completes, with every record written in one transaction, or changes nothing. Denials
// are kPermissionDenied errors whose message starts with the reason code ("hub-only: ..."), and
// `Denial` recovers the code.
//
// Exchange: `Release` and `Forward` produce a transfer package, `Consent`, `Reclassify`,
// `Destroy` (everywhere) and `Report` produce signed notices; `Receive` accepts any of them from a
// partner whose public keys were imported, and returns a signed receipt. The formats are in
// docs/node.md. Each package or notice is also queued, in the transaction that made it, in the
// store's outbox for the parties it is for (the recipient; the holders of the object for a
// consent, reclassification or destruction; the originator for a report), which a live node
// (server.h) delivers; homes whose packages are carried by hand ignore the queue.
//
// Thread safety: a Node is used by one thread at a time. Two processes may open one home.
#ifndef ACCORD_NODE_H_
#define ACCORD_NODE_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/crypto.h"
#include "accord/engine.h"
#include "accord/keystore.h"
#include "accord/merkle.h"
#include "accord/secret.h"
#include "accord/status.h"
#include "accord/store.h"
#include "accord/time.h"

namespace accord {

enum class KeyStoreKind { kFile, kPkcs11 };
enum class ClockKind { kSystem, kSimulated };

struct NodeInitOptions {
  std::string home;        // created; must not exist or be empty
  std::string party;       // a party of the policy
  std::string policy_dir;  // copied into the home
  ClockKind clock = ClockKind::kSystem;
  KeyStoreKind key_store = KeyStoreKind::kFile;
  SecretBytes passphrase;  // file key store
  ScryptParams scrypt;
  Pkcs11Options pkcs11;  // PKCS#11 key store (the PIN is not written to the home)
};

// Creates a home: key store, identity keys, store, policy copy, and the policy's subjects of this
// party. Nothing is left behind on failure.
[[nodiscard]] Status InitNode(NodeInitOptions options);

// What BackupHome copied.
struct HomeBackup {
  StoreBackup store;
  // The home's other files, relative to it, in order; a directory's name ends with a slash.
  std::vector<std::string> files;
};

// Copies the home `home` into `out`, a new directory of mode 0700: the store as one consistent
// snapshot (BackupSqliteStore), for which a server running on the home does not stop, and every
// other file of the home as it is (the key store, the policy's copy, the public keys, a
// serve.toml), each made durable. The copy is a home, opened with the same passphrase or PIN;
// it holds only what the home holds (sealed payloads, wrapped keys), and nothing is decrypted
// to make it. kAlreadyExists if `out` exists (a directory, a file or a link), kNotFound if
// `home` has no store, kFailedPrecondition for a symbolic link or a special file in the home;
// on failure `out`, which this made, is removed.
[[nodiscard]] Result<HomeBackup> BackupHome(const std::string& home, const std::string& out);

struct NodeOptions {
  std::string home;
  SecretBytes passphrase;               // file key store
  SecretBytes pin;                      // PKCS#11 key store
  std::optional<Instant> at;            // simulated homes only: the instant of every operation
  size_t max_payload_bytes = 64 << 20;  // larger payloads and packages are refused
  // SqliteOptions::sync_file_for_testing of the home's store; null: fdatasync.
  int (*sync_file_for_testing)(int fd) = nullptr;
};

// The largest envelope (a package or notice, as a partner's node sends it) that carries a
// payload of `max_payload_bytes`: the package's body holds the payload's ciphertext in base64,
// and the envelope holds that body in base64 again, with a margin for the rest. SIZE_MAX when
// that is more than a size_t holds (a `--max-payload` near 2^64).
[[nodiscard]] constexpr size_t MaxEnvelopeBytes(size_t max_payload_bytes) {
  constexpr size_t kMargin = 1 << 20;
  if (max_payload_bytes / 9 > (SIZE_MAX - kMargin) / 16) return SIZE_MAX;
  return max_payload_bytes / 9 * 16 + kMargin;
}
static_assert(MaxEnvelopeBytes(SIZE_MAX) == SIZE_MAX);
static_assert(MaxEnvelopeBytes(64 << 20) == 120'353'216);

struct NewObject {
  std::string id;
  std::string level;  // in this party's scheme
  std::vector<std::string> topics;
  std::vector<std::string> compartments;
  std::vector<std::string> rel_to;
};

// What `Read` decided and, when allowed, the payload.
struct ReadResult {
  Reason reason = Reason::kInvalidRequest;
  std::string agreement;      // empty for the originator's own readers
  std::string marking_level;  // the reader's party's level, e.g. "GOKUHI"; empty for own
  std::string marking_name;   // its native name, e.g. "極秘"
  std::string originator;
  std::string level;  // the object's own level, in the originator's scheme
  std::vector<std::string> explain;
  SecretBytes payload;
};

struct ObjectSummary {
  std::string id;
  std::string originator;
  std::string level;
  int64_t version = 0;
  std::vector<std::string> topics;
  std::vector<std::string> compartments;
  std::vector<std::string> rel_to;
  std::string received_from;  // empty when originated here
  std::optional<Instant> destroyed_at;
  size_t payload_bytes = 0;          // ciphertext size minus the AEAD overhead
  std::vector<std::string> held_by;  // parties released or forwarded to, as this node knows
};

// One page of Node::List.
struct ObjectPage {
  std::vector<ObjectSummary> objects;  // by id
  // The last id of this page when more objects follow it (the next page's `after`).
  std::optional<std::string> next;
};

struct ReceiveResult {
  std::string kind;  // release | forward | consent | reclassify | destroy | report | receipt
  std::string object_id;
  std::string from;
  std::string summary;  // one line for people
  Bytes receipt;        // signed receipt to send back; empty when receiving a receipt
};

enum class DestroyScope { kOwnCopy, kEverywhere };

// What an envelope (package, notice or receipt) says about itself, before any check: for
// routing and idempotency, never for a decision.
struct EnvelopeInfo {
  std::string kind;  // release | forward | consent | reclassify | destroy | report | receipt
  std::string id;    // the package or notice id (for a receipt: the one it acknowledges)
  std::string signer;
  std::string object_id;
  std::string to;  // the addressee when the envelope names one
};

// Parses `bytes` as an envelope of at most `max_bytes`. kInvalidArgument when it is not one.
[[nodiscard]] Result<EnvelopeInfo> InspectEnvelope(ByteView bytes, size_t max_bytes);

// Whether a witness logs each checkpoint it cosigns or only the forks it catches. A node that
// witnesses its partners continuously logs forks only: otherwise two nodes witnessing each other
// would make each other's logs grow forever.
enum class WitnessLogging { kEveryCosignature, kForksOnly };

class Node {
 public:
  // Unlocks the key store and opens the store. Errors: kNotFound (no home), kPermissionDenied
  // (wrong passphrase or PIN), kFailedPrecondition (`at` given to a home on the system clock).
  [[nodiscard]] static Result<std::unique_ptr<Node>> Open(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  [[nodiscard]] const std::string& party() const;
  [[nodiscard]] Instant Now() const;
  [[nodiscard]] const Engine& engine() const;
  [[nodiscard]] Store& store();

  // The subject on whose behalf the following operations run (the API's caller): it is recorded
  // in their log entries, and it must be allowed to read an object to release, forward, consent
  // to, reclassify or destroy it (any subject may report a loss or compromise). Empty (the
  // default): the node's operator at the console, who may do what the agreements allow.
  void set_actor(std::string subject);
  [[nodiscard]] const std::string& actor() const;

  // Group commit: runs `body`, and the operations it calls share one store transaction. Each
  // operation still succeeds or fails on its own, except that the reads' log entries are stored
  // together (decision #55): should that fail, the group does. On an error (the commit failed)
  // none of them took effect. The commit does not wait for the disk: nothing the operations
  // returned (a payload, a package) may leave the node before SyncCommits returns OK, which may run
  // on another thread while the next group runs here. `body` must not throw.
  [[nodiscard]] Status Group(const std::function<void()>& body);
  // Like Group, but the commit is durable when GroupDurable returns, as a single operation's
  // is. Errors: those of the commit (kUnavailable: the store could not commit; nothing the
  // operations did took effect). `body` must not throw.
  [[nodiscard]] Status GroupDurable(const std::function<void()>& body);
  // Makes every commit so far durable (Store::SyncCommits): thread-safe, unlike the rest.
  // LogCheckpoint calls it when a group is not yet durable: a signed checkpoint never covers
  // entries that a power loss could take back.
  [[nodiscard]] Status SyncCommits();
  // SyncCommits when a group commit of this Node's is not durable yet: before answering with
  // what such a group may have written (an object received, an outbox row).
  [[nodiscard]] Status SyncIfBehind();
  // The log's size once everything in it is durable: syncs this Node's group commits first when
  // one is not yet (a size, entry or proof answered must not show what a power loss could take
  // back). What the API's log routes answer from.
  [[nodiscard]] Result<uint64_t> DurableLogSize();
  // OK until this process found the node's own stored state damaged (Store::CheckIntact): then
  // kDataLoss, marked Error::own_state, naming the first damage, until the node restarts. The node
  // goes on serving what the damage does not touch (decision #186); this says it is not whole.
  [[nodiscard]] Status CheckIntact();

  // Stores a new object originated by this party, sealed under a fresh data key.
  [[nodiscard]] Status Create(const NewObject& object, ByteView payload);
  // Decides `subject` reading `object_id` now; on allow, decrypts. A denial is an error.
  [[nodiscard]] Result<ReadResult> Read(const std::string& subject_id,
                                        const std::string& object_id);
  // The objects this node holds, or, for `subject_id`, only those the subject may read now (a
  // label is itself classified), by id: the first `limit` whose id sorts after `after`
  // (bytewise). Listing is not logged; reading is.
  [[nodiscard]] Result<ObjectPage> List(const std::string& subject_id = {},
                                        std::string_view after = {},
                                        size_t limit = std::numeric_limits<size_t>::max());

  // Transfer packages (signed envelopes) for `to`.
  [[nodiscard]] Result<Bytes> Release(const std::string& object_id, const std::string& to);
  [[nodiscard]] Result<Bytes> Forward(const std::string& object_id, const std::string& to);
  // Signed notices.
  [[nodiscard]] Result<Bytes> Consent(const std::string& object_id, const std::string& to);
  [[nodiscard]] Result<Bytes> Reclassify(const std::string& object_id, const std::string& level);
  // kOwnCopy: erases this node's copy (returns an empty notice). kEverywhere: the originator's
  // alone; also returns the notice holders apply.
  [[nodiscard]] Result<Bytes> Destroy(const std::string& object_id, DestroyScope scope);
  [[nodiscard]] Result<Bytes> Report(const std::string& object_id, const std::string& kind,
                                     const std::string& text);

  // Verifies and applies a package, notice or receipt. One received before is refused with
  // kAlreadyExists (a replay); `StoredReceipt` gives the receipt this node signed for it then.
  // A receipt closes the delivery of its package in the outbox (store.h). Damage found in this
  // node's own state as a whole (Error::own_state) is kUnavailable, not a refusal: the envelope
  // is not at fault, and nothing is logged. So is a refusal whose entry could not be logged: a
  // refusal is final for the sender only once it is on record.
  [[nodiscard]] Result<ReceiveResult> Receive(ByteView envelope);
  // As Receive, once `vet` accepted what the envelope says of itself, before its signature is
  // checked; vet's error is returned as it is, and nothing is logged. The envelope is parsed
  // once (InspectEnvelope and then Receive would parse it twice). A body that does not parse is
  // vetted with only `kind` and `signer` set, then refused (and logged) once its signature
  // verified, as Receive refuses it.
  using EnvelopeVet = std::function<Status(const EnvelopeInfo&)>;
  [[nodiscard]] Result<ReceiveResult> Receive(ByteView envelope, const EnvelopeVet& vet);
  // The signed receipt (with its log evidence) this node gave for the package `package_id` of
  // `from`; kNotFound. Made durable first if a group commit holding it is not synced yet
  // (SyncCommits' errors).
  [[nodiscard]] Result<Bytes> StoredReceipt(const std::string& from, const std::string& package_id);
  // Whether `envelope`, from this node's outbox, is still one this node signed: kDataLoss when
  // its signature no longer verifies with this node's key (the store damaged it) or it is not
  // an envelope of this node's.
  [[nodiscard]] Status VerifyOwnEnvelope(ByteView envelope) const;

  // --- the audit log (docs/ledger.md) ---
  // Every operation and decision above appended one entry, in the transaction that made it.

  [[nodiscard]] Result<uint64_t> LogSize();
  // The log's current checkpoint, signed by this node's identity key (a C2SP signed note whose
  // origin is "accord/<PARTY>").
  [[nodiscard]] Result<std::string> LogCheckpoint();
  // The C2SP verifier key partners check this node's checkpoints with.
  [[nodiscard]] std::string LogVerifierKey() const;
  // Entries [from, from + count); kOutOfRange past the end.
  [[nodiscard]] Result<std::vector<Bytes>> LogEntries(uint64_t from, uint64_t count);
  [[nodiscard]] Result<std::vector<merkle::Hash>> LogInclusionProof(uint64_t index, uint64_t size);
  [[nodiscard]] Result<std::vector<merkle::Hash>> LogConsistencyProof(uint64_t size1,
                                                                      uint64_t size2);
  [[nodiscard]] Result<merkle::Hash> LogRoot(uint64_t size);
  // Recomputes the whole tree from the entries and compares every stored hash (like fsck).
  // kDataLoss naming the first mismatch, or when the log shrank during the check; kUnavailable
  // when the store stays busy past its busy timeout. Returns the number of entries checked.
  //
  // That shows the store agrees with itself, not that nobody rewrote it: an edit that fixes up
  // the hashes it changes passes. `signed_checkpoints` (signed notes, as LogCheckpoint prints
  // them, cosigned or not) are the anchor no edit can move: each must be signed by this node's
  // key (kInvalidArgument when it is not, or is no signed note; kDataLoss when the signature
  // fails) and name its log (kInvalidArgument), and the entries must lead to its root at its
  // size (kDataLoss when they do not, or are fewer). `names`, when given, name the checkpoints
  // in that order (their files) in the error of one that is refused.
  [[nodiscard]] Result<uint64_t> VerifyLog(std::span<const std::string> signed_checkpoints = {},
                                           std::span<const std::string> names = {});
  // Witnesses a partner's signed checkpoint: verifies its signature with the partner's key and
  // the consistency proof from the last checkpoint of that partner this node cosigned, then
  // cosigns it and keeps it. A checkpoint that does not extend the last one cosigned is kDataLoss,
  // and both signed checkpoints are kept as evidence (`ForkEvidence`). `served_by`, when given, is
  // the party whose node served the checkpoint: one of another party's log is kPermissionDenied
  // (a node must not pass a third party's checkpoints off as its own, or frame that party with a
  // proof that cannot hold), and nothing is kept. `proof_from`, when given, is the size the
  // proof starts at, as the caller read it (`WitnessedSize`): if another witness of this home
  // cosigned meanwhile, the last checkpoint cosigned is no longer that size, and a checkpoint
  // larger than it is kUnavailable with nothing kept, rather than a proof from the wrong size
  // taken for a fork.
  [[nodiscard]] Result<std::string> WitnessCheckpoint(
      std::string_view checkpoint, std::span<const merkle::Hash> proof,
      WitnessLogging logging = WitnessLogging::kEveryCosignature, std::string_view served_by = {},
      std::optional<uint64_t> proof_from = std::nullopt);
  // The origin line of `party`'s log checkpoints: "accord/" and the party.
  [[nodiscard]] static std::string LogOrigin(std::string_view party);
  // The size of `party`'s log this node last cosigned; 0 when none.
  [[nodiscard]] Result<uint64_t> WitnessedSize(const std::string& party);
  // The checkpoint of `party`'s log this node last cosigned, by its size and root; nothing
  // when none.
  struct Cosigned {
    uint64_t size = 0;
    merkle::Hash root{};
  };
  [[nodiscard]] Result<std::optional<Cosigned>> LastCosigned(const std::string& party);
  [[nodiscard]] Result<std::vector<EvidenceRecord>> ForkEvidence();
  // The checkpoints of `party`'s log that came as the evidence of its envelopes (or of a
  // forward's release) and are not yet proved consistent with those this node cosigned, of at
  // most `max_size` entries, smallest first, at most `limit` (decision #86).
  [[nodiscard]] Result<std::vector<ShownCheckpointRecord>> UnprovedCheckpoints(
      const std::string& party, uint64_t max_size, size_t limit);
  [[nodiscard]] Result<uint64_t> CountUnprovedCheckpoints(const std::string& party);
  // The mark of the checkpoints shown so far: ShownCheckpointMark before a request, then
  // OvertakenCheckpoint with it, gives only those that came before the request.
  [[nodiscard]] Result<int64_t> ShownCheckpointMark();
  // The largest unproved checkpoint of `party`'s log larger than `size` that came before
  // `mark`: when `party`'s node gave a checkpoint of `size` entries as its latest after the
  // mark was read, it had shown this one first. An honest log never shrinks, so its log then
  // has a branch, or went back (decision #86).
  [[nodiscard]] Result<std::optional<ShownCheckpointRecord>> OvertakenCheckpoint(
      const std::string& party, uint64_t size, int64_t mark);
  // Keeps `signed_checkpoint`, one of `party`'s log signed by its key, among the checkpoints
  // shown and not yet proved, as if it had come as evidence: the federation's witnessing keeps
  // one it fetched but could not cosign, because another witness of this home cosigned a larger
  // one meanwhile (decision #94). kPermissionDenied when it is not `party`'s log or not signed
  // by its key.
  [[nodiscard]] Status KeepShownCheckpoint(std::string_view signed_checkpoint,
                                           const std::string& party);
  // Proves checkpoints of UnprovedCheckpoints consistent with the last checkpoint of their log
  // this node cosigned, which must have `to_size` entries and `to_root` (the tree the log gave
  // the proofs to), each with its proof, RFC 9162's PROOF(size, to_size) as the log gave it, in
  // one transaction. Each is then settled: kept without its note, and not proved again if it is
  // shown again. One that its proof does not connect is a fork: both signed checkpoints are kept
  // as evidence (ForkEvidence), the refusal is logged (`witness` `deny` `fork`), and its reason is
  // returned among the others'. kFailedPrecondition when the last one cosigned has another size
  // (witnessed since: fetch the proofs again) or another root (proofs to another tree say nothing
  // of the cosigned one), or is smaller than one of them, or when they are not all of one log;
  // nothing changes then. An empty list checks nothing and changes nothing.
  struct CheckpointProof {
    ShownCheckpointRecord shown;
    std::vector<merkle::Hash> proof;
  };
  [[nodiscard]] Result<std::vector<std::string>> ProveCheckpoints(
      uint64_t to_size, const merkle::Hash& to_root, std::span<const CheckpointProof> proofs);

  [[nodiscard]] Status AddSubject(const SubjectRecord& subject);
  // Removes a subject from the directory and logs it (`subject-remove`): from the next request
  // on, a certificate naming it is refused (403), here or in a server running on this home.
  // kNotFound if there is no such subject; nothing is logged then.
  [[nodiscard]] Status RemoveSubject(const std::string& id);
  // A subject of the directory (kNotFound if none). Inside a group (Group), each subject is read
  // from the store once until an operation of the group that may change it: the server looks its
  // caller up, and then the caller's reads do.
  [[nodiscard]] Result<SubjectRecord> Subject(const std::string& id);
  // {"party":"KOR","sign":"<base64>","wrap":"<base64>"}
  [[nodiscard]] std::string ExportPublic() const;
  // Imports a partner's exported public keys. Returns the party.
  [[nodiscard]] Result<std::string> ImportPublic(std::string_view json);

 private:
  struct Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The reason code of a denial returned by a Node operation, if `error` is one.
[[nodiscard]] std::optional<Reason> Denial(const Error& error);

// The node's own reason code, beside the engine's (DESIGN §3): only the originator may release,
// consent, reclassify or order destruction everywhere.
inline constexpr std::string_view kNotOriginator = "not-originator";

// Whether `error` is a refusal because this node did not originate the object (kPermissionDenied).
[[nodiscard]] bool IsNotOriginator(const Error& error);

// Whether `error` is Receive's refusal of an envelope whose signature does not verify with the
// key this node holds for its signer (kDataLoss). From a partner's node, which its certificate
// authenticated, that is a key changed or imported wrong, and importing its keys mends it.
[[nodiscard]] bool IsBadSignature(const Error& error);

// `error`, met while serving a partner node's request (its envelope, or the lookup of the node
// itself), as the partner must be told it. Damage found in this node's own stored state
// (Error::own_state, always kDataLoss) is no fault of the request: an envelope is not refused
// (a refusal is logged, and final for its sender) but made kUnavailable, still marked, so that
// the sender keeps it and sends it again once this node's operator has repaired the home
// (decision #186). Any other error is returned as it is.
[[nodiscard]] Error AsPartnerSees(Error error);

}  // namespace accord

#endif  // ACCORD_NODE_H_
