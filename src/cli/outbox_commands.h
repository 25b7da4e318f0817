// `accord outbox ...`: the envelopes a node queued for its partners (docs/api.md, "Federation").
#ifndef ACCORD_SRC_CLI_OUTBOX_COMMANDS_H_
#define ACCORD_SRC_CLI_OUTBOX_COMMANDS_H_

#include <cstddef>
#include <string>

namespace accord {
class Node;
}  // namespace accord

namespace accord::cli {

// `outbox ls`: the count of envelopes per partner and state, then up to `limit` of those not
// delivered (pending first, then given up), one a line, as GET /v1/outbox lists them.
int RunOutboxList(Node& node, size_t limit);

// `outbox export`: writes the envelope `id` queued for `to` to `out` ("-": standard output), as
// the command that made it wrote it, for a partner reached by hand. One given up is refused; one
// delivered already is written all the same (the partner answers it with the receipt it gave).
int RunOutboxExport(Node& node, const std::string& id, const std::string& to,
                    const std::string& out);

}  // namespace accord::cli

#endif  // ACCORD_SRC_CLI_OUTBOX_COMMANDS_H_
