// Decision throughput on the compiled index (Google Benchmark).
//
// The workload is bench/workload.h's: 30 parties, 200 agreements with histories, and requests
// mixing read, release and forward. Requests are decoded once, before timing, into owned copies;
// the timed loop is Engine::Decide alone. A counting operator new reports allocations per
// decision, which must be zero.
//
//   build/release/bench/accord_decide_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <cstdlib>
#include <new>

#include "accord/engine.h"
#include "accord/json.h"
#include "accord/request_json.h"
#include "workload.h"

namespace {

std::atomic<int64_t> g_allocations{0};

}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace accord::bench {
namespace {

// Decoded requests copied into contiguous arenas, in input order, as a streaming decoder lays
// them out (the decoder's own views last only until its next line). Capacities are reserved
// before copying so that no view is invalidated.
class RequestArena {
 public:
  RequestArena(size_t bytes, size_t lists, size_t releases, size_t forwards, size_t consents) {
    chars_.reserve(bytes);
    views_.reserve(lists);
    releases_.reserve(releases);
    forwards_.reserve(forwards);
    consents_.reserve(consents);
  }

  RequestView Copy(const RequestView& in) {
    RequestView v = in;
    v.subject.party = Keep(in.subject.party);
    v.subject.clearance = Keep(in.subject.clearance);
    v.subject.need_to_know = Keep(in.subject.need_to_know);
    v.subject.compartments = Keep(in.subject.compartments);
    ObjectView& o = v.object;
    o.id = Keep(in.object.id);
    o.originator = Keep(in.object.originator);
    o.level = Keep(in.object.level);
    o.topics = Keep(in.object.topics);
    o.compartments = Keep(in.object.compartments);
    o.rel_to = Keep(in.object.rel_to);
    const size_t r0 = releases_.size(), f0 = forwards_.size(), c0 = consents_.size();
    for (const ReleaseView& r : in.object.releases) {
      releases_.push_back({Keep(r.to), r.at, Keep(r.agreement), {}});
    }
    for (const ForwardView& f : in.object.forwards) {
      forwards_.push_back({Keep(f.from), Keep(f.to), f.at, Keep(f.agreement)});
    }
    for (const ConsentView& c : in.object.consents) consents_.push_back({Keep(c.to), c.at});
    o.releases = std::span(releases_).subspan(r0);
    o.forwards = std::span(forwards_).subspan(f0);
    o.consents = std::span(consents_).subspan(c0);
    v.to = Keep(in.to);
    v.holder = Keep(in.holder);
    return v;
  }

 private:
  std::string_view Keep(std::string_view s) {
    if (chars_.size() + s.size() > chars_.capacity()) std::abort();  // reserve was too small
    const size_t at = chars_.size();
    chars_.insert(chars_.end(), s.begin(), s.end());
    return {chars_.data() + at, s.size()};
  }
  std::span<const std::string_view> Keep(std::span<const std::string_view> in) {
    if (views_.size() + in.size() > views_.capacity()) std::abort();
    const size_t at = views_.size();
    for (std::string_view s : in) views_.push_back(Keep(s));
    return std::span<const std::string_view>(views_).subspan(at, in.size());
  }

  std::vector<char> chars_;
  std::vector<std::string_view> views_;
  std::vector<ReleaseView> releases_;
  std::vector<ForwardView> forwards_;
  std::vector<ConsentView> consents_;
};

struct Fixture {
  Engine engine;
  std::vector<std::string> lines;
  std::unique_ptr<RequestArena> arena;
  std::vector<RequestView> requests;             // in input order
  std::vector<const RequestView*> by_action[3];  // read, release, forward
  std::vector<const RequestView*> mixed;

  static Fixture& Get() {
    static Fixture* f = [] {
      const Policy policy = GeneratePolicy({1, 30, 200});
      auto engine = Engine::Compile(policy);
      if (!engine) std::abort();
      auto* fx =
          new Fixture{std::move(*engine), GenerateRequests(policy, 2, 300'000), {}, {}, {}, {}};
      // Upper bounds for the arena: every string of a line lies within the line's bytes.
      size_t bytes = 0;
      for (const std::string& line : fx->lines) bytes += line.size();
      fx->arena =
          std::make_unique<RequestArena>(bytes, bytes / 4, bytes / 40, bytes / 40, bytes / 40);
      RequestDecoder decoder;
      fx->requests.reserve(fx->lines.size());
      for (const std::string& line : fx->lines) {
        auto r = decoder.Decode(line);
        if (!r) std::abort();
        fx->requests.push_back(fx->arena->Copy(**r));
      }
      for (const RequestView& r : fx->requests) {
        fx->mixed.push_back(&r);
        fx->by_action[static_cast<int>(r.action)].push_back(&r);
      }
      return fx;
    }();
    return *f;
  }
};

void RunDecide(benchmark::State& state, const std::vector<const RequestView*>& requests) {
  const Engine& engine = Fixture::Get().engine;
  size_t i = 0;
  int64_t allows = 0;
  const int64_t allocations_before = g_allocations.load();
  for (auto _ : state) {
    const Decision d = engine.Decide(*requests[i]);
    allows += d.allow;
    benchmark::DoNotOptimize(d);
    if (++i == requests.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["allocs_per_decision"] =
      benchmark::Counter(static_cast<double>(g_allocations.load() - allocations_before) /
                         static_cast<double>(state.iterations()));
  state.counters["allow_share"] =
      benchmark::Counter(static_cast<double>(allows) / static_cast<double>(state.iterations()));
}

const std::vector<const RequestView*>& Views(int action) {
  return Fixture::Get().by_action[action];
}

void BM_DecideRead(benchmark::State& state) { RunDecide(state, Views(0)); }
void BM_DecideRelease(benchmark::State& state) { RunDecide(state, Views(1)); }
void BM_DecideForward(benchmark::State& state) { RunDecide(state, Views(2)); }
void BM_DecideMixed(benchmark::State& state) { RunDecide(state, Fixture::Get().mixed); }
// The same mix over a working set that fits in cache, as in `accord decide`, where each request
// is decided right after it was decoded.
void BM_DecideMixedHot(benchmark::State& state) {
  const auto& all = Fixture::Get().mixed;
  RunDecide(state, std::vector<const RequestView*>(all.begin(), all.begin() + state.range(0)));
}
void BM_DecideReadHot(benchmark::State& state) {
  const auto& reads = Views(0);
  RunDecide(state, std::vector<const RequestView*>(reads.begin(), reads.begin() + state.range(0)));
}

// The whole of `accord decide` for one line, in process: decode, decide, explain, encode.
void BM_DecodeDecideEncode(benchmark::State& state) {
  Fixture& fx = Fixture::Get();
  RequestDecoder decoder;
  ResponseWriter writer(fx.engine, ResponseOptions{state.range(0) != 0});
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    auto r = decoder.Decode(fx.lines[i]);
    writer.Write(out, decoder.id_json(), **r, fx.engine.Decide(**r));
    out.clear();
    if (++i == fx.lines.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

// Parsing alone, the workload's lines into an arena as RequestDecoder does: Boost.JSON's parser
// (arg 0) against accord's, which also refuses duplicate keys (arg 1).
void BM_ParseRequestLine(benchmark::State& state) {
  Fixture& fx = Fixture::Get();
  std::array<unsigned char, 16384> first_block{};
  boost::json::monotonic_resource arena(first_block.data(), first_block.size());
  boost::json::parser boost_parser;
  JsonParser accord_parser;
  size_t i = 0;
  for (auto _ : state) {
    arena.release();
    const std::string& line = fx.lines[i];
    if (state.range(0) == 0) {
      boost_parser.reset(boost::json::storage_ptr(&arena));
      boost::system::error_code ec;
      boost_parser.write(line.data(), line.size(), ec);
      benchmark::DoNotOptimize(boost_parser.release());
    } else {
      benchmark::DoNotOptimize(accord_parser.Parse(line, boost::json::storage_ptr(&arena)));
    }
    if (++i == fx.lines.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_DecideRead);
BENCHMARK(BM_DecideRelease);
BENCHMARK(BM_DecideForward);
BENCHMARK(BM_DecideMixed);
BENCHMARK(BM_DecideMixedHot)->Arg(1000)->ArgName("requests");
BENCHMARK(BM_DecideReadHot)->Arg(1000)->ArgName("requests");
BENCHMARK(BM_DecodeDecideEncode)->Arg(0)->Arg(1)->ArgName("explain");
BENCHMARK(BM_ParseRequestLine)->Arg(0)->Arg(1)->ArgName("strict");

}  // namespace
}  // namespace accord::bench

BENCHMARK_MAIN();
