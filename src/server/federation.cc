#include "accord/federation.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "accord/clock.h"
#include "accord/https_client.h"
#include "accord/json.h"
#include "accord/merkle.h"
#include "accord/note.h"
#include "api.h"
#include "resolve.h"
#include "tls.h"

namespace accord {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr std::string_view kEnvelopesPath = "/v1/federation/envelopes";
constexpr std::string_view kBatchesPath = "/v1/federation/batches";
// A batch's envelopes, at most, in bytes: half a server's default body limit (1 MiB). A batch
// that fails halves a partner's budget (a partner with a smaller limit closes the connection
// before it answers 413); one below the least goes alone, and each request that succeeds
// doubles it back.
constexpr size_t kMaxBatchBytes = 512 * 1024;
constexpr size_t kMinBatchBytes = 16 * 1024;
constexpr size_t kMaxLogLine = 2000;     // bytes of one line of the federation's log
constexpr size_t kMaxStatusBytes = 500;  // of a partner's text in its status (last_error)
// Receipts recorded in one transaction, at most: it holds the store's write lock while it
// verifies them (two signatures each), and the node's server waits for that lock.
constexpr size_t kReceiptsPerCommit = 8;
// Deliveries to one partner in one pass, at most (each a batch, or an envelope alone; a batch the
// partner will not take goes one envelope a request): a partner with a long backlog, or one that
// keeps being sent more, takes turns with the others and with witnessing instead of holding the
// thread.
constexpr int kDeliveriesPerTurn = 16;
// And its time, after which no further request is started in that turn: a partner whose batches
// go one by one, or whose node answers slowly, does not hold the others' deliveries for longer.
constexpr std::chrono::milliseconds kTurnTime{1000};
// A partner's answer, at most: a batch's receipts (256 of a few KiB each) with room to spare. A
// larger one is cut off as a failed request, before it is parsed.
constexpr size_t kMaxAnswerBytes = 8 << 20;
// Proving the checkpoints a partner showed as evidence (decision #86) is done in requests of
// kProofSizes sizes (the partner computes a request's proofs in one go, between the requests
// of others), at most kProofRequestsPerRound of them a round of witnessing and for about
// kProofTimePerRound (it stops after the request that passes it); the rest wait for the next
// round.
constexpr size_t kProofSizes = 32;
constexpr size_t kProofRequestsPerRound = 32;
constexpr std::chrono::milliseconds kProofTimePerRound{100};
// Deliveries come first: while this node delivered envelopes in the last kProofQuiet, a round
// makes requests for about kProofTimeWhileBusy only (at least one), and a full round comes
// kProofMaxWait after the last one.
constexpr std::chrono::milliseconds kProofQuiet{250};
constexpr std::chrono::milliseconds kProofTimeWhileBusy{5};
constexpr std::chrono::seconds kProofMaxWait{30};

std::string_view AsText(const Bytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

int64_t NowMicros() { return SystemClock().Now().micros; }

void LogToStderr(std::string_view line) {
  std::fprintf(stderr, "accord federation: %.*s\n", static_cast<int>(line.size()), line.data());
}

// A partner known by its names alone (no [[peer]] cert) is whichever node certificate with those
// names chains to `ca`. With several CAs there, each of them (another party's too) can certify a
// node by any party's names; pinning the partner's key closes that (decision #110). One CA may
// still stand above several parties' CAs, which this count cannot see (decision #128).
void WarnOfUnpinnedPartners(const FederationOptions& options,
                            const std::function<void(std::string_view)>& log) {
  const auto unpinned = [](const PeerOptions& p) { return p.cert_file.empty(); };
  if (std::none_of(options.peers.begin(), options.peers.end(), unpinned)) return;
  const Result<int> cas = server_internal::CountCas(options.ca_file);
  if (!cas || *cas < 2) return;  // the client's set-up has read the same file already
  for (const PeerOptions& p : options.peers) {
    if (!unpinned(p)) continue;
    const std::string line = fmt::format(
        "warning: partner {} is known by its names alone, and each of the {} CAs of `{}` can "
        "certify a node by those names; pin its key with its node certificate ([[peer]] cert)",
        p.party, *cas, options.ca_file);
    log(line);
  }
}

// The partner's answer is final when it refused the envelope itself: one it cannot read or
// apply (400, 422), or one a decision denies (403 with the reason's code). `message` is the
// answer's "code: message" (ErrorMessage). A server error, a timeout or a rate limit is not
// final, and neither is a refusal of the calling node rather than of its envelope (401, 404 or
// 405 for the route, 403 `permission-denied`: the partner does not know this node yet, or knows
// another key for it). That is a configuration, which can be mended, and the envelope waits for
// it as for a partner that cannot be reached.
bool IsFinalRefusal(unsigned status, std::string_view message) {
  if (status < 400 || status >= 500) return false;
  switch (status) {
    case 401:
    case 404:
    case 405:
    case 408:
    case 429:
      return false;
    case 403:
      return !message.starts_with("permission-denied:");
    default:
      return true;
  }
}

}  // namespace

using server_internal::ErrorMessage;

struct Federation::Impl {
  struct Peer {
    PeerOptions options;
    std::unique_ptr<HttpsClient> client;
    int64_t retry_at_us = 0;     // the partner was unreachable: not before then
    int64_t failures = 0;        // consecutive
    int64_t local_failures = 0;  // consecutive failures to record its receipts in this store
    int64_t witnessed_at_us = 0;
    int64_t proved_at_us = 0;               // when ProveShown last ran a full round
    std::string proof_error;                // the last failure to prove, logged once
    bool port_known = false;                // read from the port file
    bool port_missing = false;              // the last failure: the file names no port
    size_t batch_bytes = kMaxBatchBytes;    // 0: one envelope a request
    size_t batch_ceiling = kMaxBatchBytes;  // lowered by a 413: the partner's body limit
    bool takes_batches = true;              // false once it answered 404 or 405 to one
    // Why its queue waits: the receipt last answered that this node did not take (Acknowledge),
    // until one is taken. Shown as its last_error while it is reached.
    std::string held_by;
    std::optional<merkle::Hash> witnessed_root;  // of the last checkpoint cosigned here
    uint64_t reported_ahead = 0;  // the size of the checkpoint shown ahead of its log, logged
    std::optional<std::pair<uint64_t, merkle::Hash>> forked_at;  // the last one found a fork
    bool fork_kept = false;  // a fork's evidence is kept: witnessing stops until a restart
    PeerStatus status;
  };

  FederationOptions options;
  std::unique_ptr<Node> node;
  std::vector<Peer> peers;
  std::function<void(std::string_view)> log;

  // When the partners' clients look at the revocation lists next (the thread's own).
  std::chrono::steady_clock::time_point next_crl_check;

  mutable std::mutex mu;
  std::condition_variable cv;
  // This pass left envelopes due to a partner whose turn ended (the thread's own).
  bool more_due = false;
  std::chrono::steady_clock::time_point turn_ends;  // of the partner's turn in Deliver (ditto)
  int64_t delivered_at_us = 0;       // when Deliver last delivered an envelope, to any partner
  bool writes_stopped = false;       // said in the log (the thread's own): see Writable
  bool woken = false;                // GUARDED_BY(mu)
  bool stopping = false;             // GUARDED_BY(mu)
  std::vector<PeerStatus> snapshot;  // GUARDED_BY(mu)
  std::thread thread;

  // Stop was called: the thread ends after the request in flight, not after the pass, which may
  // be a long backlog to a slow partner (what is not delivered stays queued).
  bool Stopping() {
    std::lock_guard lock(mu);
    return stopping;
  }

  int64_t Backoff(int64_t failures) const {
    const int64_t initial =
        std::chrono::duration_cast<std::chrono::microseconds>(options.retry_initial).count();
    const int64_t cap =
        std::chrono::duration_cast<std::chrono::microseconds>(options.retry_max).count();
    const int64_t shift = std::min<int64_t>(failures > 0 ? failures - 1 : 0, 20);
    return std::min(cap, initial << shift);
  }

  // Re-reads the partner's port file, once at first and again after a failure to reach it (a
  // partner restarted on another port); the file's error when it names no port (ReadPortFile).
  Status RefreshPort(Peer& p) {
    if (p.options.port_file.empty() || (p.port_known && p.failures == 0)) return OkStatus();
    ACCORD_ASSIGN_OR_RETURN(const uint16_t port,
                            server_internal::ReadPortFile(p.options.port_file));
    p.client->set_port(port);
    p.port_known = true;
    return OkStatus();
  }

  // The partner's port file names no port, for `why`: most often its node is not running (a
  // clean stop removes the file) or not yet. That is a failure to reach it, as a refused
  // connection is: its status says why, and the envelopes a request would have carried show the
  // attempt and when the next one is due (the file is read again at every pass meanwhile, so a
  // partner that starts is reached at once).
  void NoPort(Peer& p, const std::string& why) {
    Unreachable(p, why, /*port_missing=*/true);
    auto recorded = node->store().RecordUnreachable(p.options.party, why, p.retry_at_us,
                                                    NowMicros(), options.batch);
    if (!recorded) {
      log(fmt::format("recording delivery attempts failed: {}", recorded.error().ToString()));
    }
  }

  void Unreachable(Peer& p, const std::string& why, bool port_missing = false) {
    p.failures += 1;
    p.retry_at_us = NowMicros() + Backoff(p.failures);
    // Said once, and again when the partner's node comes up but cannot be reached, or goes, or
    // its port file fails for another cause.
    const bool changed =
        port_missing != p.port_missing || (port_missing && why != p.status.last_error);
    p.port_missing = port_missing;
    if (p.status.reachable || p.failures == 1 || changed) {
      log(fmt::format("{} unreachable, retrying with backoff: {}", p.options.party, why));
    }
    p.status.reachable = false;
    p.status.last_error = why;
  }

  void Reached(Peer& p) {
    if (!p.status.reachable && p.failures > 0) {
      log(fmt::format("{} reachable again", p.options.party));
    }
    p.failures = 0;
    p.retry_at_us = 0;
    p.port_missing = false;
    p.status.reachable = true;
    p.status.last_error = p.held_by;  // reached, but its queue may still wait on a receipt
  }

  // Records a failed attempt at `r`; false (and a log line) when the store fails.
  bool Record(const OutboxRecord& r, const std::string& why, int64_t retry_at_us, bool give_up) {
    auto s = node->store().RecordAttempt(r.id, r.to, why, retry_at_us, give_up, NowMicros());
    if (!s) log(fmt::format("recording a delivery attempt failed: {}", s.error().ToString()));
    return s.has_value();
  }

  // What one request did: whether it delivered anything, and whether to stop delivering to
  // the partner for now (it is unreachable, asked to wait, or the store failed).
  struct Step {
    bool delivered = false;
    bool stop = false;
  };

  // Whether the partner's turn has had its time (kTurnTime): the next request waits for the
  // other partners' turns.
  bool TurnOver() const { return std::chrono::steady_clock::now() >= turn_ends; }

  // Delivers what is due for `p`, in queue order, several envelopes a request when several are
  // due, stopping at the first failure to reach it, at Stop, or after kDeliveriesPerTurn or
  // kTurnTime. Returns whether anything was delivered.
  bool Deliver(Peer& p) {
    bool delivered = false;
    std::set<int64_t> tried;  // an entry still due after its attempt is not tried again now
    turn_ends = std::chrono::steady_clock::now() + kTurnTime;
    for (int deliveries = 0; !Stopping(); ++deliveries) {
      if (!Writable()) return delivered;  // a sync failed during the turn
      if (deliveries == kDeliveriesPerTurn || TurnOver()) {
        more_due = true;  // the next pass comes at once, after the other partners' turns
        return delivered;
      }
      // Only what one request can carry is read: an envelope carries its payload (up to the
      // payload limit, 64 MiB by default), and 64 of them need not fit in memory.
      auto due = node->store().DueDeliveries(p.options.party, NowMicros(), options.batch,
                                             p.takes_batches ? p.batch_bytes : 0);
      if (!due) {
        log(fmt::format("reading the outbox failed: {}", due.error().ToString()));
        return delivered;
      }
      std::vector<const OutboxRecord*> next;
      size_t bytes = 0;
      for (const OutboxRecord& r : *due) {
        if (tried.contains(r.seq) || next.size() == kMaxBatchEnvelopes) break;
        // One the partner did not take before is checked before it goes again, and so is one
        // with no bytes (decisions #183, #184), which would otherwise cost the partner a refusal.
        if ((r.attempts > 0 || r.envelope.empty()) && !Intact(p, r)) {
          tried.insert(r.seq);
          continue;
        }
        const bool batchable = p.takes_batches && Batchable(r.envelope);
        if (!next.empty() && (!batchable || bytes + r.envelope.size() > p.batch_bytes)) break;
        next.push_back(&r);
        tried.insert(r.seq);
        bytes += r.envelope.size();
        if (!batchable) break;
      }
      if (next.empty()) return delivered;
      const Step step = next.size() == 1 ? DeliverOne(p, *next.front()) : DeliverBatch(p, next);
      delivered = delivered || step.delivered;
      if (step.delivered) delivered_at_us = NowMicros();
      if (step.stop) return delivered;
    }
    return delivered;
  }

  // An envelope is one line of JSON, with its newline: anything else (nothing should be) goes
  // alone.
  static bool Batchable(const Bytes& envelope) {
    if (envelope.size() < 2 || envelope.back() != '\n') return false;
    return std::find(envelope.begin(), envelope.end() - 1, '\n') == envelope.end() - 1;
  }

  static size_t HalfBudget(size_t bytes) { return bytes / 2 < kMinBatchBytes ? 0 : bytes / 2; }

  void Succeeded(Peer& p) {
    Reached(p);
    p.status.requests += 1;
    p.batch_bytes = std::min(std::max(p.batch_bytes * 2, kMinBatchBytes), p.batch_ceiling);
  }

  Step DeliverOne(Peer& p, const OutboxRecord& r) {
    auto sent = p.client->Request("POST", kEnvelopesPath, AsText(r.envelope));
    const std::string why = !sent                 ? sent.error().message
                            : sent->status != 200 ? ErrorMessage(sent->status, sent->body)
                                                  : std::string();
    if (!sent || (sent->status != 200 && !IsFinalRefusal(sent->status, why))) {
      Unreachable(p, why);
      Record(r, why, p.retry_at_us, false);
      return {false, true};
    }
    Succeeded(p);
    if (sent->status != 200) return Refused(p, r, why);
    const Step step = Acknowledge(p, r, sent->body);
    if (step.delivered) p.status.delivered += 1;
    return step;
  }

  // Sends `batch` in one request; the partner answers one line per envelope, in order: its
  // receipt, or {"status":N,"error":{...}} with the status the envelope alone would have got.
  // It applies none after one it could not apply now (5xx), so the queue's order holds.
  Step DeliverBatch(Peer& p, const std::vector<const OutboxRecord*>& batch) {
    std::string body;
    for (const OutboxRecord* r : batch) body.append(AsText(r->envelope));
    auto sent = p.client->Request("POST", kBatchesPath, body, "application/jsonl");
    const std::string why = !sent                 ? sent.error().message
                            : sent->status != 200 ? ErrorMessage(sent->status, sent->body)
                                                  : std::string();
    // A batch refused as a whole for its route (404, 405) or its size (413) goes one by one below.
    const bool route_or_size =
        sent && (sent->status == 404 || sent->status == 405 || sent->status == 413);
    if (!sent || (sent->status != 200 && !route_or_size && !IsFinalRefusal(sent->status, why))) {
      Unreachable(p, why);
      p.batch_bytes = HalfBudget(p.batch_bytes);
      RecordAll(batch, why, p.retry_at_us);
      return {false, true};
    }
    std::vector<std::string_view> answers;
    if (sent->status == 200) {
      // One more than the batch is already a mismatch: a body of newlines must not become
      // millions of views.
      for (std::string_view rest = sent->body; !rest.empty() && answers.size() <= batch.size();) {
        const size_t nl = rest.find('\n');
        answers.push_back(rest.substr(0, nl));
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      }
    }
    if (answers.size() != batch.size()) {
      // Refused as a whole (a partner without the route, say), or an answer that does not
      // match: the envelopes go one by one, each refused or accepted on its own.
      log(fmt::format("{} did not take a batch of {} envelopes ({}); sending them one by one",
                      p.options.party, batch.size(),
                      sent->status != 200             ? why
                      : answers.size() > batch.size() ? std::string("more answers than envelopes")
                                                      : fmt::format("{} answers", answers.size())));
      if (sent->status == 404 || sent->status == 405) p.takes_batches = false;
      if (sent->status == 413) {
        // The partner's body limit is below this batch: no batch as large again (until this
        // node restarts), whatever the envelopes sent alone below do to the budget.
        p.batch_ceiling = HalfBudget(body.size());
        p.batch_bytes = std::min(p.batch_bytes, p.batch_ceiling);
      }
      Step total;
      for (const OutboxRecord* r : batch) {
        if (Stopping()) return {total.delivered, true};
        // The rest stay due, in order, for the partner's next turn; the first goes now, or a
        // slow batch would take every turn and none would go alone.
        if (r != batch.front() && TurnOver()) {
          more_due = true;
          return {total.delivered, true};
        }
        const Step one = DeliverOne(p, *r);
        total.delivered = total.delivered || one.delivered;
        if (one.stop) return {total.delivered, true};
      }
      return total;
    }
    // A line the partner could not apply now (a 5xx) holds it and the rest back, as a failure to
    // reach the partner would, with a backoff that grows while it lasts.
    std::vector<server_internal::BatchAnswer> parsed;
    parsed.reserve(answers.size());
    for (std::string_view line : answers) parsed.push_back(server_internal::ReadBatchAnswer(line));
    const auto not_applied = std::find_if(parsed.begin(), parsed.end(), [](const auto& a) {
      return a.error && !IsFinalRefusal(a.status, a.message);
    });
    if (not_applied != parsed.end()) {
      p.status.requests += 1;
      Unreachable(p, not_applied->message);
    } else {
      Succeeded(p);
    }
    // The receipts recorded, and the refusals and attempts noted, a few per durable transaction.
    Step step;
    for (size_t first = 0; first < batch.size(); first += kReceiptsPerCommit) {
      const size_t end = std::min(batch.size(), first + kReceiptsPerCommit);
      uint64_t acknowledged = 0;
      Step chunk;
      const Status committed = node->GroupDurable([&] {
        for (size_t i = first; i < end; ++i) {
          const Step one = Answered(p, *batch[i], answers[i], parsed[i]);
          if (one.delivered) acknowledged += 1;
          chunk.delivered = chunk.delivered || one.delivered;
          chunk.stop = chunk.stop || one.stop;
        }
      });
      if (!committed) {
        // No receipt of it was recorded: the envelopes stay due, and the partner, which has them,
        // will answer the next attempt with the same receipts. Not before a while. (If SQLite
        // rolled the transaction back by itself, an attempt noted after that was committed
        // alone: a count and an error that say a little more than happened, nothing lost.)
        log(fmt::format("recording {}'s receipts failed: {}", p.options.party,
                        committed.error().ToString()));
        // The partner was reached (Succeeded reset its count), so this store's own failures
        // count, and the backoff grows while they last (a full disk must not make the batch go
        // again four times a second).
        p.local_failures += 1;
        p.retry_at_us = NowMicros() + Backoff(p.local_failures);
        return {step.delivered, true};
      }
      p.local_failures = 0;
      p.status.delivered += acknowledged;
      step.delivered = step.delivered || chunk.delivered;
      step.stop = step.stop || chunk.stop;
    }
    return step;
  }

  // Handles the partner's answer `line` for `r`, read as `answer` (ReadBatchAnswer).
  Step Answered(Peer& p, const OutboxRecord& r, std::string_view line,
                const server_internal::BatchAnswer& answer) {
    if (!answer.error) return Acknowledge(p, r, line);
    if (IsFinalRefusal(answer.status, answer.message)) return Refused(p, r, answer.message);
    // Not applied now (the partner's store, or an envelope before it that was not): this one
    // and the rest wait for the partner (DeliverBatch set the backoff).
    Record(r, answer.message, p.retry_at_us, false);
    return {false, true};
  }

  // Records a failed attempt at each of `batch`, in one transaction.
  void RecordAll(const std::vector<const OutboxRecord*>& batch, const std::string& why,
                 int64_t retry_at_us) {
    const Status committed = node->GroupDurable([&] {
      for (const OutboxRecord* r : batch) Record(*r, why, retry_at_us, false);
    });
    if (!committed) {
      log(fmt::format("recording delivery attempts failed: {}", committed.error().ToString()));
    }
  }

  // Whether `r`, which a partner did not take at an earlier attempt or which has no bytes, is
  // still as this node signed it. One that is not was damaged in the store: no partner would
  // take it, whatever keys it holds, so it is given up. (A partner that cannot verify a sound
  // one holds another key for this node, and the envelope waits for it: decision #97.)
  bool Intact(const Peer& p, const OutboxRecord& r) {
    const Status own = node->VerifyOwnEnvelope(r.envelope);
    if (own) return true;
    const std::string why = "damaged in this node's outbox: " + own.error().message;
    log(fmt::format("gave up the {} `{}` of `{}` to {}: {}", r.kind, r.id, r.object_id,
                    p.options.party, why));
    Record(r, why, 0, true);
    return false;
  }

  // `why` the partner refused `r` for good: marked failed.
  Step Refused(Peer& p, const OutboxRecord& r, const std::string& why) {
    log(fmt::format("{} refused the {} `{}` of `{}`: {}", p.options.party, r.kind, r.id,
                    r.object_id, why));
    return {false, !Record(r, "refused: " + why, 0, true)};
  }

  // Verifies and records `receipt`, which must be the partner's receipt for this very envelope:
  // a receipt for another one would verify, close nothing, and leave this one due.
  Step Acknowledge(Peer& p, const OutboxRecord& r, std::string_view receipt) {
    auto recorded = node->Receive(AsBytes(receipt), [&](const EnvelopeInfo& info) {
      return info.kind == "receipt" && info.id == r.id && info.signer == r.to
                 ? OkStatus()
                 : Status(Fail(Code::kInvalidArgument, "the answer is not the receipt for it"));
    });
    if (!recorded) {
      // The partner answered, but not with a receipt this node can accept, or this node could
      // not record it now: keep the envelope queued, retry later, and say why, in the log and
      // in the partner's status (a queue held behind it is not a healthy partner).
      const Code code = recorded.error().code;
      const std::string why = server_internal::OneLine(
          std::string(code == Code::kInternal      ? "cannot record the receipt: "
                      : code == Code::kUnavailable ? "receipt not taken now: "
                                                   : "bad receipt: ") +
              recorded.error().message,
          kMaxStatusBytes);
      log(fmt::format("{}: {} `{}`: {}", p.options.party, r.kind, r.id, why));
      p.held_by = why;
      p.status.last_error = why;
      return {false, !Record(r, why, NowMicros() + Backoff(r.attempts + 1), false)};
    }
    p.held_by.clear();
    return {true, false};
  }

  // Fetches the partner's checkpoint and the consistency proof from the size last cosigned,
  // and witnesses it.
  void Witness(Peer& p) {
    p.witnessed_at_us = NowMicros();
    // Once a fork's evidence is kept, every later checkpoint of the partner is inconsistent
    // with the one cosigned before it too: each would add evidence and a log entry, as often
    // as the partner's log grows. The first says what there is to say.
    if (p.fork_kept) return;
    // What was shown before the checkpoint is asked for (ProveShown): 0, none, if unknown.
    const int64_t shown_mark = node->ShownCheckpointMark().value_or(0);
    // The size cosigned last, read before the checkpoint is fetched: one cosigned meanwhile by
    // another witness of this home (`accord log witness`) is then newer than `old`, never
    // taken for the partner's own and larger than what it gives now (a rollback).
    auto old = node->WitnessedSize(p.options.party);
    if (!old) return;
    auto checkpoint = p.client->Request("GET", "/v1/log/checkpoint");
    if (!checkpoint) {
      Unreachable(p, checkpoint.error().message);
      return;
    }
    Reached(p);
    if (checkpoint->status != 200) {
      p.status.last_error =
          "witness: no checkpoint: " + ErrorMessage(checkpoint->status, checkpoint->body);
      log(fmt::format("{}: {}", p.options.party, p.status.last_error));
      return;
    }
    auto parsed = note::Parse(checkpoint->body);
    auto cp = parsed ? note::ParseCheckpoint(parsed->text) : tl::unexpected(parsed.error());
    if (!cp) {
      p.status.last_error = "witness: a malformed checkpoint: " + cp.error().message;
      log(fmt::format("{}: {}", p.options.party, p.status.last_error));
      return;
    }
    if (cp->origin != Node::LogOrigin(p.options.party)) {
      // Another party's log (signed by it, and so not forged): this node would otherwise check
      // it against what it cosigned of that party and keep a "fork" of an honest log.
      p.status.last_error = server_internal::OneLine(
          "witness: a checkpoint of another log, `" + cp->origin + "`", kMaxStatusBytes);
      log(fmt::format("{} served a checkpoint of another log, `{}`: not witnessed", p.options.party,
                      server_internal::OneLine(cp->origin, kMaxStatusBytes)));
      return;
    }
    // Nothing new: the size and root cosigned last. The same size with another root is a fork,
    // and so is a smaller size: the witness below finds them.
    if (*old == cp->size && p.witnessed_root == cp->root) {
      p.status.witnessed_at_us = NowMicros();
      ProveShown(p, cp->size, cp->root, shown_mark);
      return;
    }
    if (p.forked_at == std::pair(cp->size, cp->root)) return;  // its evidence is kept already
    // Another witness of this home (`accord log witness`) may cosign between the read of `old`
    // and this node's cosignature (decision #94). The checkpoint in hand, which may be a fork's,
    // is not dropped: it is witnessed again from the size cosigned now (with a proof from there
    // if larger, by its root if the same size), or, when that size is already larger, kept as a
    // checkpoint shown, which ProveShown proves on the cosigned chain.
    Result<std::string> cosigned = Fail(Code::kInternal, "not witnessed");
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::vector<merkle::Hash> proof;
      if (*old > 0 && *old < cp->size) {
        auto fetched = ConsistencyProof(p, *old, cp->size);
        if (!fetched) return;
        proof = std::move(*fetched);
      }
      cosigned = node->WitnessCheckpoint(checkpoint->body, proof, WitnessLogging::kForksOnly,
                                         p.options.party, *old);
      // kUnavailable: the size cosigned last is not `old`. kFailedPrecondition with `old` no
      // larger than the checkpoint: the size cosigned last is larger than both.
      const bool moved_on =
          !cosigned && (cosigned.error().code == Code::kUnavailable ||
                        (cosigned.error().code == Code::kFailedPrecondition && *old <= cp->size));
      if (!moved_on) break;
      auto now = node->WitnessedSize(p.options.party);
      if (!now || *now == *old) break;  // the store's failure, not another witness's
      log(fmt::format("{}: another witness of this home cosigned {} entries of its log meanwhile",
                      p.options.party, *now));
      if (*now > cp->size) {
        if (auto kept = node->KeepShownCheckpoint(checkpoint->body, p.options.party); !kept) {
          log(fmt::format("{}: cannot keep its checkpoint at size {}: {}", p.options.party,
                          cp->size, kept.error().ToString()));
        }
        return;
      }
      old = std::move(now);
    }
    if (!cosigned && *old > cp->size && cosigned.error().code == Code::kFailedPrecondition) {
      // (Cosign's kFailedPrecondition: signed by the partner, and smaller than the checkpoint
      // cosigned before. A checkpoint that is not the partner's word, or a store that fails,
      // is not a rollback and goes to "cannot witness" below.)
      // The partner's latest checkpoint is older than one it gave before: its log was rolled
      // back (restored from a backup, say). Not evidence of a fork, and nothing is kept in the
      // store, but reported as one, since entries it signed for are gone from its log.
      log(fmt::format("WITNESS: {}'s log went back from {} to {} entries", p.options.party, *old,
                      cp->size));
      p.status.last_error = fmt::format("rolled back: from {} to {} entries", *old, cp->size);
      if (p.status.fork.empty()) p.status.fork = p.status.last_error;
      p.forked_at = std::pair(cp->size, cp->root);
      return;
    }
    if (!cosigned && cosigned.error().code != Code::kDataLoss) {
      // Not a fork (Witness::Cosign's only kDataLoss): a bad signature, no key, the store.
      log(fmt::format("{}: cannot witness its checkpoint at size {}: {}", p.options.party, cp->size,
                      cosigned.error().ToString()));
      p.status.last_error = "witness: " + cosigned.error().message;
      return;
    }
    if (!cosigned) {
      log(fmt::format("WITNESS: {}'s log at size {} is not consistent with size {}: {}",
                      p.options.party, cp->size, *old, cosigned.error().message));
      p.status.last_error = "fork: " + cosigned.error().message;
      if (p.status.fork.empty()) p.status.fork = cosigned.error().message;  // kept: see PeerStatus
      p.forked_at = std::pair(cp->size, cp->root);
      p.fork_kept = true;
      log(
          fmt::format("WITNESS: witnessing {} stops until this node restarts; the evidence is in "
                      "`accord log evidence`",
                      p.options.party));
      return;
    }
    p.status.witnessed_size = cp->size;
    p.status.witnessed_at_us = NowMicros();
    p.witnessed_root = cp->root;
    ProveShown(p, cp->size, cp->root, shown_mark);
  }

  // The consistency proof from `from` entries of the partner's log to `to`, as it gives it;
  // nothing (and a line in the log) if it gives none.
  std::optional<std::vector<merkle::Hash>> ConsistencyProof(Peer& p, uint64_t from, uint64_t to) {
    auto answer =
        p.client->Request("GET", fmt::format("/v1/log/consistency?from={}&to={}", from, to));
    if (!answer || answer->status != 200) {
      // Shown in the peer's status too: a partner that never gives a proof from the size this
      // node cosigned is never witnessed again, and its operator should see why.
      p.status.last_error =
          fmt::format("witness: no consistency proof from {} to {}: {}", from, to,
                      answer ? ErrorMessage(answer->status, answer->body) : answer.error().message);
      log(fmt::format("{}: {}", p.options.party, p.status.last_error));
      return std::nullopt;
    }
    const auto v = ParseJson(answer->body);
    auto proof =
        merkle::DecodeProof(v && v->is_object() ? v->as_object().if_contains("proof") : nullptr);
    if (!proof) {
      p.status.last_error = "witness: a malformed consistency proof: " + proof.error().message;
      log(fmt::format("{}: {}", p.options.party, p.status.last_error));
      return std::nullopt;
    }
    return std::move(*proof);
  }

  // The consistency proofs from each of `sizes` entries of the partner's log (at most
  // kProofSizes, each smaller than `to`) to its checkpoint of `to` entries with `root`,
  // in one request. An error message if it gives none, or proofs to another tree.
  Result<std::map<uint64_t, std::vector<merkle::Hash>>> ConsistencyProofs(
      Peer& p, const std::vector<uint64_t>& sizes, uint64_t to, const merkle::Hash& root) {
    json::object request;
    request["to"] = to;
    json::array from;
    for (const uint64_t size : sizes) from.emplace_back(size);
    request["from"] = std::move(from);
    auto answer = p.client->Request("POST", "/v1/log/consistency", json::serialize(request));
    if (!answer || answer->status != 200) {
      return Fail(Code::kUnavailable,
                  fmt::format("no consistency proofs from {} sizes to {}: {}", sizes.size(), to,
                              answer ? ErrorMessage(answer->status, answer->body)
                                     : answer.error().message));
    }
    auto proofs = merkle::DecodeConsistencyProofs(answer->body);
    if (!proofs) return Fail(Code::kDataLoss, proofs.error().message);
    const auto malformed = [](std::string_view what) {
      return Fail(Code::kDataLoss, fmt::format("malformed consistency proofs: {}", what));
    };
    if (proofs->to != to || proofs->root != root) {
      // Not the tree this node cosigned: not evidence about the checkpoints shown.
      return malformed(fmt::format("not to the checkpoint of {} entries cosigned", to));
    }
    if (proofs->proofs.size() != sizes.size()) return malformed("not one proof per size");
    std::map<uint64_t, std::vector<merkle::Hash>> out;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (proofs->proofs[i].from != sizes[i]) return malformed("not the sizes asked, in order");
      out.emplace(sizes[i], std::move(proofs->proofs[i].proof));
    }
    return out;
  }

  // Proves the checkpoints of the partner's log that came as evidence (decision #86) consistent
  // with the one cosigned last, of `size` entries with `root`, which the partner gave as its
  // latest after `shown_mark` was read, the smallest first, within the bounds above
  // (kProofSizes). A larger one waits until a checkpoint as large is cosigned, unless it came
  // before the mark: then the partner had shown more entries than it now gives as its log, and
  // that is reported.
  void ProveShown(Peer& p, uint64_t size, const merkle::Hash& root, int64_t shown_mark) {
    const auto fail = [&](const std::string& why) {
      if (p.proof_error != why) {  // once, not every round, while it lasts
        log(fmt::format("{}: the checkpoints it showed: {}", p.options.party, why));
        p.proof_error = why;
      }
      p.status.last_error = "proofs: " + why;
    };
    const auto micros = [](auto d) {
      return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    };
    // While deliveries flow, a short round; a full round every kProofMaxWait.
    const bool busy = NowMicros() - delivered_at_us < micros(kProofQuiet) &&
                      NowMicros() - p.proved_at_us < micros(kProofMaxWait);
    const int64_t until_us = NowMicros() + micros(busy ? kProofTimeWhileBusy : kProofTimePerRound);
    if (!busy) p.proved_at_us = NowMicros();
    for (size_t round = 0; round < kProofRequestsPerRound && !Stopping() && NowMicros() < until_us;
         ++round) {
      auto shown = node->UnprovedCheckpoints(p.options.party, size, kProofSizes);
      if (!shown) {
        fail(shown.error().ToString());
        break;
      }
      if (shown->empty()) break;
      std::vector<uint64_t> sizes;  // distinct, ascending (as listed); one at `size` needs none
      for (const ShownCheckpointRecord& c : *shown) {
        if (c.size < size && (sizes.empty() || sizes.back() != c.size)) sizes.push_back(c.size);
      }
      std::map<uint64_t, std::vector<merkle::Hash>> proofs;
      if (!sizes.empty()) {
        auto fetched = ConsistencyProofs(p, sizes, size, root);
        if (!fetched) {
          fail(fetched.error().message);
          break;
        }
        proofs = std::move(*fetched);
      }
      std::vector<Node::CheckpointProof> items;
      items.reserve(shown->size());
      for (ShownCheckpointRecord& c : *shown) {
        std::vector<merkle::Hash> proof;
        if (c.size < size) proof = proofs.at(c.size);  // one per distinct size, checked above
        items.push_back(Node::CheckpointProof{std::move(c), std::move(proof)});
      }
      auto forks = node->ProveCheckpoints(size, root, items);
      if (!forks) {
        fail(forks.error().ToString());
        break;
      }
      p.proof_error.clear();
      for (const std::string& fork : *forks) {
        log(fmt::format("WITNESS: {}'s log: {}", p.options.party, fork));
        p.status.last_error = "fork: " + fork;
        if (p.status.fork.empty()) p.status.fork = fork;  // kept: see PeerStatus
      }
      if (items.size() < kProofSizes) break;
    }
    if (auto left = node->CountUnprovedCheckpoints(p.options.party)) p.status.unproved = *left;
    auto ahead = node->OvertakenCheckpoint(p.options.party, size, shown_mark);
    if (ahead && *ahead) {
      const std::string why =
          fmt::format("it showed a checkpoint of {} entries, then gave one of {} as its latest",
                      (*ahead)->size, size);
      if (p.reported_ahead != (*ahead)->size) {
        log(fmt::format("WITNESS: {}'s log: {}", p.options.party, why));
        p.reported_ahead = (*ahead)->size;
      }
      p.status.last_error = "fork: " + why;
      if (p.status.fork.empty()) p.status.fork = why;
    }
  }

  // Delivers `p`'s due envelopes and, when it is time, witnesses its log.
  void Serve(Peer& p) {
    Deliver(p);
    if (Stopping()) return;
    // Witnessing runs on its own schedule, not after each delivery: it reads two answers from
    // the partner and writes the cosigned checkpoint, which would delay the next deliveries.
    const int64_t interval =
        std::chrono::duration_cast<std::chrono::microseconds>(options.witness_interval).count();
    if (NowMicros() >= p.retry_at_us && NowMicros() - p.witnessed_at_us >= interval && Writable()) {
      Witness(p);
    }
  }

  // The latest time a retry of `p` can be due at `now`, the longest backoff ahead: a time set
  // further ahead was set by a clock that has gone back since (NTP stepping a clock that ran
  // ahead, a virtual machine resumed, or before a restart), and would hold the partner's queue
  // until the clock caught up with it. Such times are brought forward, in memory and in the
  // outbox; so are the times of the last witnessing and delivery, which schedule the next.
  void CatchUpWithClock(Peer& p, int64_t now) {
    const int64_t latest =
        now + std::chrono::duration_cast<std::chrono::microseconds>(options.retry_max).count();
    p.retry_at_us = std::min(p.retry_at_us, latest);
    p.witnessed_at_us = std::min(p.witnessed_at_us, now);
    delivered_at_us = std::min(delivered_at_us, now);
    auto moved = node->store().BringForwardAttempts(p.options.party, latest);
    if (!moved) {
      log(fmt::format("reading the outbox failed: {}", moved.error().ToString()));
    } else if (*moved > 0) {
      log(
          fmt::format("{}: {} envelope(s) were due later than the longest backoff from now (the "
                      "clock went back): now due within it",
                      p.options.party, *moved));
    }
  }

  // Once a second, each partner's client looks at the revocation lists (new lists close its
  // kept connection); what they say alike is logged once, naming them all.
  void RefreshRevocationLists() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_crl_check) return;
    next_crl_check = now + std::chrono::seconds(1);
    std::map<std::string, std::string> parties;  // by line
    for (Peer& p : peers) {
      try {
        if (std::string line = p.client->RefreshRevocationLists(); !line.empty()) {
          std::string& who = parties[line];
          who += (who.empty() ? "" : ", ") + p.options.party;
        }
      } catch (const std::exception& e) {  // allocation: this one looks again next second
        try {
          log(fmt::format("{}: revocation lists: {}", p.options.party, ExceptionText(e)));
        } catch (const std::exception&) {
        }
      }
    }
    try {
      for (const auto& [line, who] : parties) log(fmt::format("{}: {}", who, line));
    } catch (const std::exception&) {  // allocation: the lines are lost, not the thread
    }
  }

  // Whether this node may deliver and witness: not once a sync of its store failed
  // (Store::CheckWritable). What it committed since its last good sync may be gone after the
  // restart that must follow, and no partner should hold it; nothing could be recorded anyway.
  // Said once in the log, and in each partner's status.
  bool Writable() {
    const Status writable = node->store().CheckWritable();
    if (writable) return true;
    const std::string why = "delivering and witnessing stopped: " + writable.error().message;
    if (!writes_stopped) {
      writes_stopped = true;
      log(why);
    }
    for (Peer& p : peers) p.status.last_error = server_internal::OneLine(why, kMaxStatusBytes);
    return false;
  }

  void Loop() {
    while (true) {
      const int64_t pass = NowMicros();
      RefreshRevocationLists();
      for (Peer& p : peers) {
        if (Stopping()) return;
        try {
          if (!Writable()) break;
          CatchUpWithClock(p, pass);
          if (p.port_missing && server_internal::ReadPortFile(p.options.port_file)) {
            // Its node has started: no backoff to wait out, here or in the outbox.
            p.retry_at_us = 0;
            if (auto moved = node->store().BringForwardAttempts(p.options.party, pass); !moved) {
              log(fmt::format("reading the outbox failed: {}", moved.error().ToString()));
            }
          }
          if (pass < p.retry_at_us) continue;
          if (const Status port = RefreshPort(p)) {
            Serve(p);
          } else {
            NoPort(p, port.error().message);
          }
        } catch (const std::exception& e) {
          // Out of memory, most likely: this partner waits as if unreachable (what it was sent
          // stays queued until its receipt is recorded), and the others go on.
          p.failures += 1;
          p.retry_at_us = NowMicros() + Backoff(p.failures);
          try {
            log(fmt::format("delivering to {} failed: {}", p.options.party, ExceptionText(e)));
          } catch (const std::exception&) {
          }
        }
      }
      std::vector<PeerStatus> statuses;
      try {
        for (const Peer& p : peers) statuses.push_back(p.status);
      } catch (const std::exception&) {  // allocation: the previous snapshot stays
        statuses.clear();
      }
      std::unique_lock lock(mu);
      if (statuses.size() == peers.size()) snapshot.swap(statuses);
      // Sleep until woken, the next poll or witnessing (when a partner's port file that named no
      // port is read again), or the earliest retry not yet tried. A retry time already due
      // before this pass was tried in it: it waits for the next poll, not for a millisecond
      // (when nothing was due, no request reset it).
      auto wait = std::min(options.poll_interval, options.witness_interval);
      if (more_due) wait = milliseconds(0);
      more_due = false;
      for (const Peer& p : peers) {
        if (p.retry_at_us > pass) {
          const auto until = milliseconds((p.retry_at_us - NowMicros()) / 1000 + 1);
          wait = std::max(milliseconds(1), std::min(wait, until));
        }
      }
      cv.wait_for(lock, wait, [&] { return woken || stopping; });
      if (stopping) return;
      woken = false;
    }
  }
};

Result<std::unique_ptr<Federation>> Federation::Start(FederationOptions options,
                                                      NodeOptions node_options) {
  auto impl = std::make_unique<Impl>();
  // A line may quote a partner's words (an error, what a receipt calls itself): each is made one
  // line, whatever they hold, so that no partner can write a line of its own into this log.
  impl->log = [sink = options.log ? options.log : LogToStderr](std::string_view line) {
    sink(server_internal::OneLine(line, kMaxLogLine));
  };
  for (const PeerOptions& p : options.peers) {
    if (p.party.empty() || (p.port == 0 && p.port_file.empty())) {
      return Fail(Code::kInvalidArgument,
                  p.party.empty()
                      ? std::string("a peer needs a party and a port (or a port file)")
                      : fmt::format("peer `{}` needs a port (or a port file)", p.party));
    }
    HttpsClientOptions co;
    co.host = p.host;
    co.port = p.port;
    co.ca_file = options.ca_file;
    co.cert_file = options.cert_file;
    co.key_file = options.key_file;
    co.crl_file = options.crl_file;
    co.expect_common_name = p.party;
    if (!p.cert_file.empty()) {
      ACCORD_ASSIGN_OR_RETURN(co.expect_public_key,
                              server_internal::PartnerKeyFromFile(p.cert_file, p.party));
    }
    co.timeout = options.request_timeout;
    co.max_response_bytes = kMaxAnswerBytes;
    ACCORD_ASSIGN_OR_RETURN(auto client, HttpsClient::Create(std::move(co)));
    Impl::Peer peer;
    peer.options = p;
    peer.client = std::move(client);
    peer.status.party = p.party;
    impl->peers.push_back(std::move(peer));
  }
  ACCORD_ASSIGN_OR_RETURN(impl->node, Node::Open(std::move(node_options)));
  for (Impl::Peer& p : impl->peers) {
    if (p.options.party == impl->node->party()) {
      return Fail(Code::kInvalidArgument, "a node is not its own peer");
    }
    if (auto size = impl->node->WitnessedSize(p.options.party)) p.status.witnessed_size = *size;
    if (auto left = impl->node->CountUnprovedCheckpoints(p.options.party)) {
      p.status.unproved = *left;
    }
  }
  WarnOfUnpinnedPartners(options, impl->log);
  impl->options = std::move(options);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<Federation>(new Federation(std::move(impl)));
}

Federation::Federation(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Federation::~Federation() { Stop(); }

void Federation::Wake() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->woken = true;
  }
  impl_->cv.notify_one();
}

void Federation::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::vector<PeerStatus> Federation::Peers() const {
  std::lock_guard lock(impl_->mu);
  return impl_->snapshot;
}

}  // namespace accord
