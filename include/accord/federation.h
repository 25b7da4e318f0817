// accord/federation.h — a live node's deliveries to its partners' nodes, and its continuous
// witnessing of their logs.
//
// Every package and notice a node makes is queued in its store's outbox in the transaction that
// made it (node.h). A Federation delivers the queue: for each partner, in queue order, it POSTs
// each envelope to the partner's `/v1/federation/envelopes` over mutual TLS with this node's
// certificate, and records the signed receipt the partner answers with (`Node::Receive`), which
// closes the delivery in the same transaction. When several are due, they go together to
// `/v1/federation/batches`, which the partner applies in one commit, and their receipts are
// recorded eight to a transaction (docs/api.md). The envelope's id is its idempotency key: a
// partner that already has it answers with the receipt it gave the first time. So an envelope is
// delivered exactly once whatever fails and in whatever order: the sender, the partner, or the
// network between the commit and the receipt. A partner that is down is retried with exponential
// backoff; one that refuses an envelope (4xx) has refused it for good, and the delivery is marked
// failed with the partner's reason.
//
// It also witnesses each partner's log: it fetches the partner's checkpoint and a consistency
// proof from the size it last cosigned, and cosigns it (`Node::WitnessCheckpoint`); a rewritten
// or truncated log is caught and the evidence kept. Then it proves the checkpoints of that log
// that came as evidence with the partner's envelopes consistent with the one cosigned
// (`Node::ProveCheckpoints`): a checkpoint of a private branch shown to this node is caught too.
//
// The Federation opens its own Node on the home (a Node is used by one thread at a time), and
// runs one thread. Thread safety: `Wake` and `Stop` may be called from any thread.
#ifndef ACCORD_FEDERATION_H_
#define ACCORD_FEDERATION_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accord/node.h"
#include "accord/status.h"

namespace accord {

struct PeerOptions {
  std::string party;  // its certificate's common name must be this
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string port_file;  // read before each connection when set (tests and demos)
  // Its node certificate (PEM): when set, the partner must present this certificate's public key,
  // whichever certificate of the CA it shows (ServerOptions::partner_certificates, the same
  // for its calls to this node).
  std::string cert_file;
};

// The most envelopes a partner's node takes in one POST /v1/federation/batches.
inline constexpr size_t kMaxBatchEnvelopes = 256;

struct FederationOptions {
  std::vector<PeerOptions> peers;
  std::string ca_file;    // the CAs partners' certificates chain to
  std::string cert_file;  // this node's certificate, presented as a TLS client
  std::string key_file;
  // PEM: certificate revocation lists (as ServerOptions::crl_file, the same file): a partner's
  // node certificate a list of its CA revokes is refused in the handshake. Read again when it
  // changes (at most once a second); new lists close the connections kept open. Empty: none.
  std::string crl_file;
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds retry_initial{250};   // first retry after a failed delivery
  std::chrono::milliseconds retry_max{30'000};    // backoff cap
  std::chrono::milliseconds poll_interval{1000};  // outbox checked this often without a Wake
  std::chrono::milliseconds witness_interval{2000};
  // Envelopes read from the outbox at once, and the most sent in one request (at most
  // kMaxBatchEnvelopes); a request also carries at most 512 KiB of envelopes (less to a partner
  // a batch failed to reach) but always one.
  size_t batch = 64;
  // One line per notable event (a partner down or back, a refusal, a fork; at the start, a
  // warning for each partner without cert_file when ca_file holds several CAs). Empty: stderr.
  std::function<void(std::string_view line)> log;
};

struct PeerStatus {
  std::string party;
  bool reachable = false;  // the last attempt reached it
  std::string last_error;
  // The first inconsistency found in the partner's log since the federation started, kept
  // whatever succeeds later (last_error is replaced by the next outcome); the node's evidence
  // (`accord log evidence`) keeps every one for good.
  std::string fork;
  uint64_t witnessed_size = 0;
  // When a checkpoint of its log was last witnessed (cosigned, or found unchanged), on the
  // system clock; 0 before the first. A partner that posts envelopes but withholds its
  // checkpoints shows here as one not witnessed for long (decision #131).
  int64_t witnessed_at_us = 0;
  // The checkpoints of its log that came as evidence and that no consistency proof has yet
  // shown on the chain this node cosigns (decision #86).
  uint64_t unproved = 0;
  uint64_t delivered = 0;  // envelopes receipted since the federation started
  uint64_t requests = 0;   // the requests that carried them (one or a batch each)
};

class Federation {
 public:
  // Opens a Node on `node_options.home` for the federation's thread and starts it. Errors: those
  // of Node::Open, kInvalidArgument for bad options or TLS files.
  [[nodiscard]] static Result<std::unique_ptr<Federation>> Start(FederationOptions options,
                                                                 NodeOptions node_options);
  ~Federation();  // Stop()s
  Federation(const Federation&) = delete;
  Federation& operator=(const Federation&) = delete;

  // Something was queued: deliver now rather than at the next poll.
  void Wake();
  // Finishes the delivery in flight, then stops the thread. Idempotent.
  void Stop();
  // A snapshot of each partner's state.
  [[nodiscard]] std::vector<PeerStatus> Peers() const;

 private:
  struct Impl;
  explicit Federation(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace accord

#endif  // ACCORD_FEDERATION_H_
