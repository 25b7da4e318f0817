// `accord outbox ls` and `accord outbox export`: what a node has queued for its partners, and a
// queued envelope written out again for a home that carries its envelopes by hand.
#include "outbox_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "accord/node.h"
#include "accord/store.h"
#include "accord/time.h"
#include "accord/utf8.h"
#include "commands.h"
#include "node_commands.h"

namespace accord::cli {
namespace {

std::string MicrosText(int64_t us) { return us > 0 ? FormatInstant(Instant{us}) : "-"; }

// One envelope as a line: what a partner wrote into it (an object id, its refusal) is escaped.
std::string Describe(const OutboxRecord& r) {
  std::string line = fmt::format("{}  {} of {} to {}  {}  queued {}  {} attempt{}", r.id, r.kind,
                                 r.object_id, r.to, DeliveryStateName(r.state),
                                 MicrosText(r.queued_us), r.attempts, r.attempts == 1 ? "" : "s");
  if (r.state == DeliveryState::kPending) line += "  next " + MicrosText(r.next_attempt_us);
  if (r.state == DeliveryState::kDelivered) line += "  delivered " + MicrosText(r.done_us);
  if (r.state == DeliveryState::kFailed) line += "  given up " + MicrosText(r.done_us);
  if (!r.last_error.empty()) line += "  last error: " + r.last_error;
  return OneLine(line);
}

}  // namespace

int RunOutboxList(Node& node, size_t limit) {
  // Counted and listed without reading an envelope, as GET /v1/outbox.
  auto counts = node.store().CountOutbox();
  if (!counts) return Report(counts.error());
  auto undelivered = node.store().ListUndelivered(limit);
  if (!undelivered) return Report(undelivered.error());
  // What a node serving this home committed without its sync yet is made durable before it is
  // shown (decision #143): an envelope carried by hand must not be taken back by a power cut.
  if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());
  uint64_t not_delivered = 0;
  for (const OutboxTotals& n : *counts) {
    fmt::print("{}  pending {}  delivered {}  failed {}\n", OneLine(n.to), n.pending, n.delivered,
               n.failed);
    not_delivered += n.pending + n.failed;
  }
  if (counts->empty()) fmt::print("the outbox of {} is empty\n", node.party());
  for (const OutboxRecord& r : *undelivered) fmt::print("{}\n", Describe(r));
  if (not_delivered > undelivered->size()) {
    fmt::print("… and {} more not delivered (--limit)\n", not_delivered - undelivered->size());
  }
  return kExitOk;
}

int RunOutboxExport(Node& node, const std::string& id, const std::string& to,
                    const std::string& out) {
  auto queued = node.store().GetQueued(id, to, EnvelopeBytes::kRead);
  if (!queued) return Report(queued.error());
  if (!*queued) {
    PrintError(
        fmt::format("no envelope `{}` for `{}` in the outbox of {} (`accord outbox ls` lists them)",
                    id, to, node.party()));
    return kExitFailed;
  }
  const OutboxRecord& r = **queued;
  if (r.state == DeliveryState::kFailed) {
    // Given up for good: the partner refused it, its object was destroyed since, or the
    // outbox's copy no longer verified.
    PrintError(fmt::format("the delivery of `{}` to {} was given up at {} ({}): not exported", id,
                           to, MicrosText(r.done_us), r.last_error));
    return kExitFailed;
  }
  if (r.envelope.empty()) {
    // Its object's copy was destroyed here since: a package's ciphertext and wrapped key went
    // with it, delivered or not.
    PrintError(
        fmt::format("the {} `{}` to {} is kept no more: this node destroyed its copy of `{}` since",
                    r.kind, id, to, r.object_id));
    return kExitFailed;
  }
  // What leaves the node is still what it signed (the store could have damaged it), and the
  // envelope of this row: a package names the party it is for; a notice goes to every holder.
  if (Status own = node.VerifyOwnEnvelope(r.envelope); !own) return Report(own.error());
  const auto info = InspectEnvelope(r.envelope, r.envelope.size());
  const bool package = r.kind == "release" || r.kind == "forward";
  if (!info || info->id != r.id || info->kind != r.kind || info->object_id != r.object_id ||
      (package && info->to != to)) {
    PrintError(fmt::format(
        "the envelope queued as the {} `{}` of `{}` for {} is not that one: the store is "
        "damaged; not exported",
        r.kind, id, r.object_id, to));
    return kExitIntegrity;
  }
  // The row, and the log entry committed with it, are durable before the envelope leaves.
  if (Status synced = node.SyncCommits(); !synced) return Report(synced.error());
  if (!WriteFile(out, r.envelope)) return kExitIo;
  std::string what =
      fmt::format("exported the {} of {} for {} ({}) → {}", r.kind, r.object_id, to, id, out);
  if (r.state == DeliveryState::kDelivered) {
    what += fmt::format(
        "; delivered already at {}: the partner answers it with the receipt it gave then",
        MicrosText(r.done_us));
  }
  // With `-` the envelope went to standard output, which must hold it alone.
  fmt::print(out == "-" ? stderr : stdout, "{}\n", OneLine(what));
  return kExitOk;
}

}  // namespace accord::cli
