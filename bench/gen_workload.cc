// accord_bench_gen: writes the benchmark workload to disk, for `accord decide` and for the Cedar
// comparison. Usage: accord_bench_gen OUT_DIR [REQUESTS] [SEED]
//   OUT_DIR/policy/         the policy directory (30 parties, 200 agreements)
//   OUT_DIR/requests.jsonl  REQUESTS requests (default 1,000,000), a third of each action
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "workload.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: accord_bench_gen OUT_DIR [REQUESTS] [SEED]\n");
    return 2;
  }
  const std::string out = argv[1];
  const size_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1'000'000;
  const uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  const accord::Policy policy = accord::bench::GeneratePolicy({seed, 30, 200});
  accord::bench::WritePolicyDir(policy, out + "/policy");
  std::ofstream requests(out + "/requests.jsonl", std::ios::binary);
  for (const std::string& line : accord::bench::GenerateRequests(policy, seed + 1, count)) {
    requests << line << '\n';
  }
  return requests ? 0 : 3;
}
