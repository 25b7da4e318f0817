// A synthetic workload for the benchmarks: a policy of many parties and agreements with histories,
// and a stream of decision requests mixing read, release and forward. Deterministic for a seed.
#ifndef ACCORD_BENCH_WORKLOAD_H_
#define ACCORD_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "accord/model.h"

namespace accord::bench {

struct WorkloadOptions {
  uint64_t seed = 1;
  int parties = 30;
  int agreements = 200;
};

// The policy: parties N00..N29, each with levels L1..L4; agreements g000..g199 (bilateral,
// multilateral and hub-and-spoke; with or without a term; with notices, suspensions, withdrawals
// and mutual terminations in their histories).
Policy GeneratePolicy(const WorkloadOptions& options);

// Writes `policy` as a policy directory (parties.toml, agreements/*.toml).
void WritePolicyDir(const Policy& policy, const std::string& dir);

// `count` requests as JSON Lines, one third of each action, over objects whose histories are
// consistent with the policy (releases name agreements between the right parties).
std::vector<std::string> GenerateRequests(const Policy& policy, uint64_t seed, size_t count);

}  // namespace accord::bench

#endif  // ACCORD_BENCH_WORKLOAD_H_
