// accord/store.h — a node's durable state behind one interface.
//
// The store keeps records; it does not decide anything and never sees a plaintext payload or an
// unwrapped key: objects arrive sealed (ciphertext and a KEK-wrapped data key). The node
// (node.h) runs every operation inside `Transact`, so each is all or nothing.
//
// Backend: SQLite (`OpenSqliteStore`), one file `state.db` in the node's home, in WAL mode with
// foreign keys on, a busy timeout, prepared statements, `secure_delete` (freed pages are zeroed,
// so a destroyed object's wrapped key does not linger) and a versioned schema migrated on open.
// Two processes may open one home: SQLite's locking serialises writers (BEGIN IMMEDIATE).
//
// Errors: kNotFound for a missing record, kAlreadyExists for a duplicate key, kUnavailable when
// the database stays locked past the busy timeout, kDataLoss for a corrupt file, kInternal for
// any other SQLite failure (the message names the statement and SQLite's text).
//
// Thread safety: one Store per thread. Separate processes are safe.
#ifndef ACCORD_STORE_H_
#define ACCORD_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/crypto.h"
#include "accord/status.h"
#include "accord/time.h"

namespace accord {

// An information object as held by this node: its own (originated here) or a received copy.
struct ObjectRecord {
  std::string id;
  std::string originator;
  std::string level;  // in the originator's scheme, current version
  std::vector<std::string> topics;
  std::vector<std::string> compartments;
  std::vector<std::string> rel_to;
  int64_t version = 1;                  // bumped by each reclassification
  Bytes ciphertext;                     // sealed payload; empty once destroyed
  Bytes wrapped_key;                    // data key wrapped by the KEK; empty once destroyed
  Instant created_at;                   // created here, or received here
  std::optional<Instant> destroyed_at;  // this node's copy destroyed
  std::string received_from;            // empty for the originator's own objects
  // The originator's commitment to the sealed content (hex SHA-256; decision #109), part of the
  // label; empty for objects made before it.
  std::string commitment;
};

// A partner's log as this node saw it when it fetched the partner's checkpoint from the partner
// itself: `size` entries at `at`, on this node's clock (decision #108).
struct WitnessingRecord {
  std::string origin;  // the log's origin, `accord/<PARTY>`
  uint64_t size = 0;
  Instant at;
};

// An object as listed: its record with `ciphertext` and `wrapped_key` left empty.
struct ObjectListing {
  ObjectRecord object;
  uint64_t ciphertext_bytes = 0;
};

struct ReleaseRecord {
  std::string object_id;
  std::string to;
  Instant at;
  std::string agreement;
  std::string level;  // the recipient's marking level at release
  std::string package_id;
};

struct ForwardRecord {
  std::string object_id;
  std::string from;
  std::string to;
  Instant at;
  std::string agreement;
  std::string package_id;
};

struct ConsentRecord {
  std::string object_id;
  std::string to;
  Instant at;
  Bytes notice;  // the originator's signed consent notice
};

struct ReclassificationRecord {
  std::string object_id;
  int64_t version = 0;  // the version this reclassification created
  std::string level;
  Instant at;
  Bytes notice;
};

enum class DestructionScope { kLocal, kEverywhere };

struct DestructionRecord {
  std::string object_id;
  Instant at;
  DestructionScope scope = DestructionScope::kLocal;
  std::string by;  // the party whose decision it was
  Bytes notice;    // empty for a local destruction
};

struct ReportRecord {
  std::string object_id;
  std::string by;  // the reporting party
  Instant at;
  std::string kind;  // "loss" | "compromise"
  std::string text;
  Bytes notice;
};

// A transfer package this node accepted (or a notice it applied), kept for evidence and to refuse
// replays: `id` is the sender's package id, unique among that sender's (one partner cannot take
// another's id first).
struct PackageRecord {
  std::string id;
  std::string kind;  // "release" | "forward" | "consent" | "reclassify" | "destroy" | "report"
  std::string object_id;
  std::string from;
  Instant at;           // the instant the sender decided it
  Instant received_at;  // when this node accepted it
  Bytes bytes;          // the signed envelope as received; empty for a release or forward
                        // whose copy was erased (EraseObjectCopy)
};

// A signed receipt: produced by this node for a package it received, or received back for a
// package it sent. Keyed by (package_id, from, by).
struct ReceiptRecord {
  std::string package_id;
  std::string from;  // the package's sender: a partner, or this node for a receipt received
  std::string by;    // the receiving party that signed
  Instant at;
  Bytes bytes;
};

struct SubjectRecord {
  std::string id;
  std::string clearance;
  std::vector<std::string> need_to_know;
  std::vector<std::string> compartments;
};

using Digest = std::array<uint8_t, 32>;

// The audit log's tree is stored in tiles of height 4, as in the C2SP tlog-tiles layout
// (docs/ledger.md): tile (level L, index t) holds the hashes of tree levels 4L to 4L + 3 under
// the subtree of level 4L + 4 and index t: its 16 bottom hashes, then the 8, 4 and 2 above them
// (30 hashes, 960 bytes), so that a proof reads hashes and computes none. Only complete tiles
// are stored (one row per 16 entries, and one per 256 above); each entry's row also holds its
// leaf hash, from which the last, incomplete tile of each level is derived.
inline constexpr int32_t kLogTileHeight = 4;
inline constexpr size_t kLogTileWidth = size_t{1} << kLogTileHeight;  // bottom hashes
inline constexpr size_t kLogTileHashes = 30;                          // 16 + 8 + 4 + 2
inline constexpr int32_t kLogTileMaxLevel = 16;                       // 4·16 = 64 tree levels

// The stored size of a complete tile, in bytes.
inline constexpr size_t kLogTileBytes = 32 * kLogTileHashes;

// The slot of the hash of tree level 4L + k (k < 4), index j among that level's hashes in the
// tile: 0–15 for k = 0, then 16–23, 24–27 and 28–29. A hash is 32 bytes from 32 · slot.
[[nodiscard]] constexpr size_t LogTileSlot(int k, uint64_t j) { return 32 - (size_t{32} >> k) + j; }

struct LogTileRecord {
  int32_t level = 0;
  uint64_t index = 0;
  Bytes hashes;  // kLogTileBytes
};

// Evidence that a partner's log was rewritten: two checkpoints it signed that no consistency
// proof connects.
struct EvidenceRecord {
  std::string origin;
  std::string earlier;  // signed checkpoint
  std::string later;    // signed checkpoint
  std::string reason;
  Instant at;
};

// A checkpoint of a partner's log that came as the evidence of an envelope (a package, a notice,
// a receipt, a forward's proof of its release), kept until a consistency proof shows it on the
// chain of checkpoints this node witnesses (decision #86).
struct ShownCheckpointRecord {
  std::string origin;
  uint64_t size = 0;
  Digest root{};
  std::string note;  // the signed checkpoint, as it came; empty once settled
  Instant at;        // when it came, on the system clock (also in homes with a simulated one)
  int64_t seq = 0;   // the order it came in, set by the store
};
enum class ShownState { kProved, kForked };

// An envelope (package or notice) waiting in the outbox to be delivered to a partner's node, or
// delivered already. `id` (the package or notice id) and `to` make the idempotency key: a partner
// that receives an envelope twice answers with the receipt it gave the first time. Times here
// are wall-clock microseconds since the epoch (delivery runs on real time, also in homes with a
// simulated clock).
enum class DeliveryState { kPending, kDelivered, kFailed };
[[nodiscard]] std::string_view DeliveryStateName(DeliveryState s);  // "pending", ...

struct OutboxRecord {
  int64_t seq = 0;  // queue order, assigned by the store
  std::string id;
  std::string to;
  std::string kind;  // "release" | "forward" | "consent" | "reclassify" | "destroy" | "report"
  std::string object_id;
  Bytes envelope;  // the signed envelope with the log evidence, as sent
  int64_t queued_us = 0;
  int64_t attempts = 0;
  int64_t next_attempt_us = 0;
  std::string last_error;
  DeliveryState state = DeliveryState::kPending;
  int64_t done_us = 0;  // when delivered (receipt recorded) or given up
};

// Whether a read of the outbox brings an envelope's bytes, or leaves OutboxRecord::envelope
// empty.
enum class EnvelopeBytes { kSkip, kRead };

// How many envelopes to one partner are in each state.
struct OutboxTotals {
  std::string to;
  uint64_t pending = 0;
  uint64_t delivered = 0;
  uint64_t failed = 0;
};

// A partner party's public keys, imported from its `accord keys export-public`.
struct PartnerRecord {
  std::string party;
  PublicKey sign_public{};
  PublicKey wrap_public{};
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs `body` in one write transaction (BEGIN IMMEDIATE): committed when it returns OK, rolled
  // back otherwise, and its error is returned. Inside another transaction it is a savepoint: a
  // failure undoes `body`'s changes only, and success makes them part of the outer transaction,
  // durable when that one commits (so several operations can share one commit: group commit).
  [[nodiscard]] virtual Status Transact(const std::function<Status()>& body) = 0;

  // Group commit, in two steps. TransactUnsynced is Transact whose commit does not wait for the
  // disk: it survives the process crashing but not yet a power loss. SyncCommits then makes
  // every transaction committed so far durable, with one sync for all of them. Nothing that
  // depends on such a transaction may leave the node before SyncCommits returns OK.
  // SyncCommits is the one method that may be called from any thread, while another thread
  // uses the store.
  [[nodiscard]] virtual Status TransactUnsynced(const std::function<Status()>& body) = 0;
  [[nodiscard]] virtual Status SyncCommits() = 0;
  // OK until a sync of the store failed in this process (SyncCommits, a commit's own or a
  // checkpoint's); kUnavailable after that, and so is every transaction, until every connection
  // of the process to the file is closed: what the failed sync covered may be lost, and a
  // later sync would not say so. A restart, which recovers from what is on disk, writes again.
  // Cheap, and callable from any thread.
  [[nodiscard]] virtual Status CheckWritable() = 0;
  // OK until damage to the store's own state (Error::own_state: a page SQLite finds malformed, a
  // log hash of the wrong size, a gap in the log) was found by any connection of this process to
  // the file, or told to NoteDamage; then kDataLoss, marked, naming the first damage, until every
  // connection of the process to the file is closed. Writes and reads go on: what the damage does
  // not touch still works (decision #186), and this is how the node says it is not whole
  // (`GET /v1/health`). Cheap, and callable from any thread.
  [[nodiscard]] virtual Status CheckIntact() = 0;
  // Tells the store of damage to its state found above it (the log's hashes missing); an error
  // not marked Error::own_state is ignored.
  virtual void NoteDamage(const Error& e) = 0;

  // Runs `body` in one read transaction (BEGIN DEFERRED): its reads see one snapshot and take the
  // database's locks once, where each statement on its own takes and releases them (system calls
  // that dominate a short query). For reads only. Inside Transact, `body` runs in that
  // transaction; Transact inside `body` fails (kFailedPrecondition). Returns body's error.
  [[nodiscard]] virtual Status ReadSnapshot(const std::function<Status()>& body) = 0;

  // --- settings (party, simulate flag, key store kind, ...) ---
  [[nodiscard]] virtual Status SetMeta(const std::string& key, const std::string& value) = 0;
  [[nodiscard]] virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;

  // Witnessings of partners' logs (decision #108), kept by origin and size; a second one of the
  // same size keeps the later time.
  [[nodiscard]] virtual Status InsertWitnessing(const WitnessingRecord& w) = 0;
  // The witnessing of `origin` with the largest size; and the one with the largest size not above
  // `index` among those not after `not_after`: at that time the log had no entry `index` yet.
  [[nodiscard]] virtual Result<std::optional<WitnessingRecord>> LatestWitnessing(
      const std::string& origin) = 0;
  [[nodiscard]] virtual Result<std::optional<WitnessingRecord>> WitnessingAtOrBelow(
      const std::string& origin, uint64_t index, Instant not_after) = 0;

  // --- objects ---
  [[nodiscard]] virtual Status InsertObject(const ObjectRecord& object) = 0;  // kAlreadyExists
  [[nodiscard]] virtual Result<ObjectRecord> GetObject(const std::string& id) = 0;  // kNotFound
  [[nodiscard]] virtual Result<std::vector<ObjectRecord>> ListObjects() = 0;        // by id
  // The first `limit` objects by id whose id sorts after `after` (bytewise), without their
  // sealed payload and key (left empty; the ciphertext's size instead), so that a listing does
  // not read every payload stored.
  [[nodiscard]] virtual Result<std::vector<ObjectListing>> ListObjectLabels(std::string_view after,
                                                                            size_t limit) = 0;
  // Replaces level, version, ciphertext and wrapped key (a reclassification re-seals) of a copy
  // that is not destroyed; kFailedPrecondition if it is (another process destroyed it since it
  // was read), so that no re-seal puts sealed bytes back under a destroyed copy.
  [[nodiscard]] virtual Status UpdateSealed(const ObjectRecord& object) = 0;
  // A destroyed copy received afresh: level, version, ciphertext, wrapped key, created_at and
  // received_from replaced, destroyed_at cleared. kNotFound if there is no such object.
  [[nodiscard]] virtual Status ReinstateObjectCopy(const ObjectRecord& object) = 0;
  // Erases ciphertext and wrapped key and sets destroyed_at; with them the payloads of the
  // packages it came in and of its releases and forwards in the outbox, whose deliveries not
  // yet made are given up (kFailed, "the object was destroyed before delivery", `done_us` the
  // wall-clock time, not `at`).
  [[nodiscard]] virtual Status EraseObjectCopy(const std::string& id, Instant at) = 0;

  // --- history, each list in order of `at` ---
  [[nodiscard]] virtual Status InsertRelease(const ReleaseRecord& r) = 0;
  [[nodiscard]] virtual Result<std::vector<ReleaseRecord>> ListReleases(
      const std::string& object_id) = 0;
  [[nodiscard]] virtual Status InsertForward(const ForwardRecord& f) = 0;
  [[nodiscard]] virtual Result<std::vector<ForwardRecord>> ListForwards(
      const std::string& object_id) = 0;
  [[nodiscard]] virtual Status InsertConsent(const ConsentRecord& c) = 0;
  [[nodiscard]] virtual Result<std::vector<ConsentRecord>> ListConsents(
      const std::string& object_id) = 0;
  [[nodiscard]] virtual Status InsertReclassification(const ReclassificationRecord& r) = 0;
  [[nodiscard]] virtual Result<std::vector<ReclassificationRecord>> ListReclassifications(
      const std::string& object_id) = 0;
  [[nodiscard]] virtual Status InsertDestruction(const DestructionRecord& d) = 0;
  [[nodiscard]] virtual Result<std::vector<DestructionRecord>> ListDestructions(
      const std::string& object_id) = 0;
  [[nodiscard]] virtual Status InsertReport(const ReportRecord& r) = 0;
  [[nodiscard]] virtual Result<std::vector<ReportRecord>> ListReports(
      const std::string& object_id) = 0;

  // --- exchange ---
  [[nodiscard]] virtual Status InsertPackage(const PackageRecord& p) = 0;  // kAlreadyExists
  [[nodiscard]] virtual Result<bool> HasPackage(const std::string& from, const std::string& id) = 0;
  // The package `id` from `from`; kNotFound if none.
  [[nodiscard]] virtual Result<PackageRecord> GetPackage(const std::string& from,
                                                         const std::string& id) = 0;
  // The packages and notices received about `object_id`, in the order they were taken.
  [[nodiscard]] virtual Result<std::vector<PackageRecord>> ListPackages(
      const std::string& object_id) = 0;
  // The orders `from` gave about `object_id` (its consent, reclassify and destroy notices), in
  // the order they were taken: what another party sent about the object is not read.
  [[nodiscard]] virtual Result<std::vector<PackageRecord>> ListOrders(const std::string& object_id,
                                                                      const std::string& from) = 0;
  [[nodiscard]] virtual Status InsertReceipt(const ReceiptRecord& r) = 0;  // kAlreadyExists
  [[nodiscard]] virtual Result<std::vector<ReceiptRecord>> ListReceipts() = 0;
  [[nodiscard]] virtual Result<ReceiptRecord> GetReceipt(const std::string& package_id,
                                                         const std::string& from,
                                                         const std::string& by) = 0;  // kNotFound

  // --- the outbox (federation) ---
  // Queues `r` (seq is assigned). kAlreadyExists for the same (id, to).
  [[nodiscard]] virtual Status Enqueue(const OutboxRecord& r) = 0;
  // Pending envelopes for `to` due at `now_us` (next_attempt_us <= now_us), in queue order, up
  // to the first pending one that is not due: none queued after it is due before it. At most
  // `limit` of them, and after the first, however large, at most `max_bytes` of envelopes in
  // all: only the envelopes returned are read.
  [[nodiscard]] virtual Result<std::vector<OutboxRecord>> DueDeliveries(const std::string& to,
                                                                        int64_t now_us,
                                                                        size_t limit,
                                                                        size_t max_bytes) = 0;
  // Every envelope for `to` (all parties when empty), pending first, then in queue order.
  [[nodiscard]] virtual Result<std::vector<OutboxRecord>> ListOutbox(const std::string& to) = 0;
  // How many envelopes each partner has in each state, by partner; no envelope is read.
  [[nodiscard]] virtual Result<std::vector<OutboxTotals>> CountOutbox() = 0;
  // Up to `limit` envelopes not delivered, pending first, then in queue order, without their
  // bytes (`envelope` left empty).
  [[nodiscard]] virtual Result<std::vector<OutboxRecord>> ListUndelivered(size_t limit) = 0;
  // A failed attempt: attempts + 1, the error, and when to try again; or, when `give_up`, the
  // envelope is marked failed for good. kNotFound unless pending.
  [[nodiscard]] virtual Status RecordAttempt(const std::string& id, const std::string& to,
                                             const std::string& error, int64_t next_attempt_us,
                                             bool give_up, int64_t now_us) = 0;
  // A failed attempt to reach `to`, recorded on the first `limit` envelopes DueDeliveries would
  // give at `now_us` as RecordAttempt records it, without reading them; returns how many.
  [[nodiscard]] virtual Result<uint64_t> RecordUnreachable(const std::string& to,
                                                           const std::string& error,
                                                           int64_t next_attempt_us, int64_t now_us,
                                                           size_t limit) = 0;
  // The parties the envelope `id` was queued for, in queue order; none when it never was.
  [[nodiscard]] virtual Result<std::vector<std::string>> QueuedFor(const std::string& id) = 0;
  // The envelope (id, to) queued, in any state, its bytes read only when `bytes` says so (they
  // may be a 64 MiB package); nullopt when it never was.
  [[nodiscard]] virtual Result<std::optional<OutboxRecord>> GetQueued(const std::string& id,
                                                                      const std::string& to,
                                                                      EnvelopeBytes bytes) = 0;
  // Makes every pending envelope for `to` due later than `latest_us` due at `latest_us`, and
  // returns how many there were; takes no write lock when there are none. For a clock that went
  // back: no backoff sets a time that far ahead.
  [[nodiscard]] virtual Result<uint64_t> BringForwardAttempts(const std::string& to,
                                                              int64_t latest_us) = 0;
  // Marks (id, to) delivered, pending or given up: a receipt for it proves the partner has it
  // (one given up when its object was destroyed may have been on its way). No effect when it
  // was never queued (a receipt for a package carried by hand) or is delivered already.
  [[nodiscard]] virtual Status MarkDelivered(const std::string& id, const std::string& to,
                                             int64_t now_us) = 0;

  // --- directory ---
  [[nodiscard]] virtual Status PutSubject(const SubjectRecord& s) = 0;  // insert or replace
  [[nodiscard]] virtual Result<SubjectRecord> GetSubject(const std::string& id) = 0;
  // Removes a subject from the directory (kNotFound if there is none of that id).
  [[nodiscard]] virtual Status DeleteSubject(const std::string& id) = 0;
  [[nodiscard]] virtual Result<std::vector<SubjectRecord>> ListSubjects() = 0;
  [[nodiscard]] virtual Status PutPartner(const PartnerRecord& p) = 0;  // insert or replace
  [[nodiscard]] virtual Result<PartnerRecord> GetPartner(const std::string& party) = 0;
  [[nodiscard]] virtual Result<std::vector<PartnerRecord>> ListPartners() = 0;

  // --- the audit log (node/audit.h) ---
  // Appends `entries` at indices [first, first + size) with their leaf hashes (one each) and the
  // tiles they complete. kFailedPrecondition unless `first` is the log's size; kAlreadyExists
  // for a tile stored already; kInvalidArgument for a count of leaf hashes other than the
  // entries' or a tile of the wrong size or level. Call inside Transact.
  [[nodiscard]] virtual Status AppendLog(uint64_t first, std::span<const Bytes> entries,
                                         std::span<const Digest> leaf_hashes,
                                         std::span<const LogTileRecord> tiles) = 0;
  [[nodiscard]] virtual Result<uint64_t> LogSize() = 0;
  // Entries [from, from + count); kOutOfRange past the end.
  [[nodiscard]] virtual Result<std::vector<Bytes>> ReadLogEntries(uint64_t from,
                                                                  uint64_t count) = 0;
  // The stored leaf hashes of entries [from, from + count), in one range query; kOutOfRange past
  // the end.
  [[nodiscard]] virtual Result<std::vector<Digest>> ReadLogLeafHashes(uint64_t from,
                                                                      uint64_t count) = 0;
  // The stored hashes of the tiles `keys` (level, index), in the order asked, in one query per
  // eight; kNotFound if any is missing, kDataLoss for a tile of the wrong size.
  [[nodiscard]] virtual Result<std::vector<Bytes>> ReadLogTiles(
      std::span<const std::pair<int32_t, uint64_t>> keys) = 0;
  [[nodiscard]] virtual Status InsertEvidence(const EvidenceRecord& e) = 0;
  [[nodiscard]] virtual Result<std::vector<EvidenceRecord>> ListEvidence() = 0;
  // Keeps `c` unless it is kept already (the same origin, size and root).
  [[nodiscard]] virtual Status KeepShownCheckpoint(const ShownCheckpointRecord& c) = 0;
  // The unproved ones of `origin` of at most `max_size` entries, smallest first, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<ShownCheckpointRecord>> ListShownCheckpoints(
      const std::string& origin, uint64_t max_size, size_t limit) = 0;
  // The `seq` of the last one kept (0 if none), of any origin.
  [[nodiscard]] virtual Result<int64_t> ShownCheckpointMark() = 0;
  // The largest unproved one of `origin` of more than `size` entries with a `seq` of at most
  // `mark`.
  [[nodiscard]] virtual Result<std::optional<ShownCheckpointRecord>> LargestShownAbove(
      const std::string& origin, uint64_t size, int64_t mark) = 0;
  // Records what a consistency proof showed of an unproved one, and empties its note; false
  // (and nothing changes) if no such one is kept unproved. It stays kept, so that it is not
  // proved again when it is shown again.
  [[nodiscard]] virtual Result<bool> SettleShownCheckpoint(const std::string& origin, uint64_t size,
                                                           const Digest& root,
                                                           ShownState state) = 0;
  // The unproved ones of `origin`.
  [[nodiscard]] virtual Result<uint64_t> CountShownCheckpoints(const std::string& origin) = 0;
};

struct SqliteOptions {
  int busy_timeout_ms = 10'000;
  // FULL fsyncs the WAL at every commit: an acknowledged write survives power loss.
  bool synchronous_full = true;
  // Makes the -wal file's data durable in SyncCommits; null: fdatasync. For tests that need the
  // disk to fail.
  int (*sync_file_for_testing)(int fd) = nullptr;
  // Called with the database's path once SQLite has opened it, before the store opens its -wal
  // file; null: nothing. For tests that move the home at that instant.
  void (*opened_for_testing)(const char* path) = nullptr;
};

// Opens (creating if needed) the SQLite store at `path` and migrates its schema to the current
// version. kFailedPrecondition for a schema newer than this program knows, and for a SQLite
// database that is not a store (tables but no `meta`), which is left as it is.
[[nodiscard]] Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                             const SqliteOptions& options = {});

// What BackupSqliteStore copied.
struct StoreBackup {
  uint64_t bytes = 0;     // of the copy
  uint64_t log_size = 0;  // entries of the audit log in it
  int schema_version = 0;
};

// Copies the store at `from` (which must exist) into `to`, a new file of mode 0600: one
// consistent snapshot, taken with SQLite's online backup in one read transaction, while other
// connections (a server on the home) go on committing. The copy is made durable, checked
// (`PRAGMA quick_check`) and opened as a store, which migrates its schema if it is older than
// this program's; the figures returned are the copy's. kAlreadyExists if `to` (or a -wal,
// -shm or -journal file beside it) exists; on any failure what was written is removed.
[[nodiscard]] Result<StoreBackup> BackupSqliteStore(const std::string& from, const std::string& to);

// The schema version this program writes.
inline constexpr int kStoreSchemaVersion = 12;

}  // namespace accord

#endif  // ACCORD_STORE_H_
