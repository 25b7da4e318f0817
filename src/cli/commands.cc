// Implementations of the `accord` subcommands on the public library API.
#include "commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "accord/config.h"
#include "accord/engine.h"
#include "accord/file.h"
#include "accord/lifecycle.h"
#include "accord/policy_json.h"
#include "accord/request_json.h"
#include "accord/utf8.h"

namespace accord::cli {
namespace {

namespace json = boost::json;

Instant Now() {
  const auto since = std::chrono::system_clock::now().time_since_epoch();
  return Instant{std::chrono::duration_cast<std::chrono::microseconds>(since).count()};
}

// Loads and compiles the policy, printing every diagnostic on failure.
std::optional<Engine> LoadEngine(const std::string& dir) {
  auto policy = LoadPolicyDir(dir);
  if (!policy) {
    // A diagnostic may quote the file (a key, an id), whose TOML escapes can spell anything.
    for (const Diagnostic& d : policy.error()) PrintLine(d.ToString());
    PrintError(fmt::format("policy `{}` has {} mistake{}", dir, policy.error().size(),
                           policy.error().size() == 1 ? "" : "s"));
    return std::nullopt;
  }
  auto engine = Engine::Compile(std::move(*policy));
  if (!engine) {
    PrintError(fmt::format("policy `{}`: {}", dir, engine.error().message));
    return std::nullopt;
  }
  return std::move(*engine);
}

// --at: an RFC 3339 instant, or a plain date on the clock of `zone`; absent means now.
std::optional<Instant> ResolveAt(const std::optional<std::string>& at, ZoneOffset zone) {
  if (!at) return Now();
  auto t = ParseInstantInZone(*at, zone);
  if (!t) {
    PrintError(fmt::format("--at: {}", t.error().message));
    return std::nullopt;
  }
  return *t;
}

void PrintJson(const json::value& v) { fmt::print("{}\n", json::serialize(v)); }

std::string PartyList(const std::vector<std::string>& parties) {
  std::string out;
  for (const std::string& p : parties) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Selects agreements by --id (all when empty); prints an error for an unknown id.
std::optional<std::vector<int32_t>> SelectAgreements(const Engine& e, const std::string& id) {
  std::vector<int32_t> out;
  if (id.empty()) {
    for (int32_t g = 0; g < e.agreement_count(); ++g) out.push_back(g);
    return out;
  }
  const int32_t g = e.AgreementIndex(id);
  if (g < 0) {
    PrintError(fmt::format("no agreement `{}` in the policy", id));
    return std::nullopt;
  }
  out.push_back(g);
  return out;
}

std::string StatusLine(const Engine& e, int32_t g, const AgreementStatus& s) {
  const ZoneOffset z = e.agreement(g).zone;
  std::string line(AgreementStateName(s.state));
  if (s.state == AgreementState::kEnded) {
    line += fmt::format(" at {} ({})", FormatInstant(*s.ends_at, z), EndCauseName(*s.ended_by));
  } else if (s.state == AgreementState::kInForce && s.ends_at) {
    line += fmt::format(", scheduled to end at {}", FormatInstant(*s.ends_at, z));
  }
  if (s.notice) {
    line += fmt::format("; notice by {} given {} is {}", s.notice->by,
                        FormatInstant(s.notice->given_at, z), NoticeStateName(s.notice->state));
  }
  for (const NoticeStatus& n : s.suspended_notices) {
    if (s.notice && n.by == s.notice->by && n.given_at == s.notice->given_at) continue;
    line += fmt::format("; notice by {} given {} is suspended", n.by, FormatInstant(n.given_at, z));
  }
  return line;
}

std::string LevelName(const Party& p, int32_t level) {
  return level < 0 ? std::string("—") : p.levels[level].id;
}

// The text of one flow-matrix cell.
std::string FlowCell(const Engine& e, const Flow& f) {
  if (f.allowed) return e.agreement(f.agreement).id;
  if (f.reason == Reason::kHubOnly) return fmt::format("via {} only", e.party(f.hub).id);
  if (f.reason == Reason::kAgreementNotInForce) return "not in force";
  return "no agreement";
}

void PrintFlowMatrix(const Engine& e, Instant t, std::string_view indent) {
  const int32_t n = e.party_count();
  std::vector<std::vector<std::string>> cells(n, std::vector<std::string>(n, "·"));
  size_t width = 6;
  for (int32_t a = 0; a < n; ++a) {
    for (int32_t b = 0; b < n; ++b) {
      if (a != b) cells[a][b] = FlowCell(e, e.FlowAt(a, b, t));
      width = std::max(width, cells[a][b].size());
    }
  }
  std::string header = fmt::format("{}{:<12}", indent, "from \\ to");
  for (int32_t b = 0; b < n; ++b) header += fmt::format("{:<{}}  ", e.party(b).id, width);
  fmt::print("{}\n", header.substr(0, header.find_last_not_of(' ') + 1));
  for (int32_t a = 0; a < n; ++a) {
    std::string row = fmt::format("{}{:<12}", indent, e.party(a).id);
    for (int32_t b = 0; b < n; ++b) {
      row += fmt::format("{:<{}}  ", cells[a][b], width);  // fmt pads by display width
    }
    fmt::print("{}\n", row.substr(0, row.find_last_not_of(' ') + 1));
  }
}

}  // namespace

void PrintError(std::string_view message) { PrintLine(fmt::format("accord: {}", message)); }

void PrintLine(std::string_view text) {
  // std::fputs, not fmt::print, which throws when the write fails (standard error a pipe whose
  // reader has gone, SIGPIPE ignored as `serve` does): the line is lost, not the process.
  std::fputs((OneLine(text) + "\n").c_str(), stderr);
}

void PrintReadError(const Error& e, std::string_view limit) {
  if (e.code == Code::kInvalidArgument && !limit.empty()) {
    PrintError(fmt::format("{} ({})", e.message, limit));
  } else {
    PrintError(e.message);
  }
}

std::optional<std::string> ReadInputFile(const std::string& path, size_t max_bytes,
                                         std::string_view limit) {
  auto text = ReadFileAtMost(path, max_bytes);
  if (!text) {
    PrintReadError(text.error(), limit);
    return std::nullopt;
  }
  return std::move(*text);
}

int RunCheck(const CheckOptions& o) {
  auto engine = LoadEngine(o.policy);
  if (!engine) return kExitPolicyInvalid;
  const Policy& p = engine->policy();
  fmt::print("{}: ok ({} parties, {} agreements, {} subjects)\n", o.policy, p.parties.size(),
             p.agreements.size(), p.subjects.size());
  return kExitOk;
}

namespace {

// A line longer than this is answered as invalid and skipped, so memory stays bounded.
constexpr size_t kMaxLine = 16u << 20;
// Input is cut into blocks of whole lines of about this size; each is decided by one worker.
constexpr size_t kBlockSize = 1u << 20;

// One block of input and, once a worker is done with it, its output.
struct Job {
  std::string input;
  std::string output;
  bool done = false;
};

// Decides blocks on `threads` workers and writes their outputs to stdout in input order. At most
// 2·threads blocks are in flight, so memory does not grow with the length of the stream.
class BlockPipeline {
 public:
  BlockPipeline(const Engine& engine, ResponseOptions options, unsigned threads)
      : engine_(engine), options_(options), max_in_flight_(2 * threads) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~BlockPipeline() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

  // Queues a block; first writes out finished blocks while too many are in flight.
  void Submit(std::string input) {
    auto job = std::make_shared<Job>();
    job->input = std::move(input);
    std::unique_lock lock(mu_);
    while (in_order_.size() >= max_in_flight_) WriteFront(lock);
    in_order_.push_back(job);
    queue_.push_back(job);
    work_cv_.notify_one();
  }
  // Writes out every block, in order.
  void Drain() {
    std::unique_lock lock(mu_);
    while (!in_order_.empty()) WriteFront(lock);
  }

 private:
  void WriteFront(std::unique_lock<std::mutex>& lock) {
    done_cv_.wait(lock, [&] { return in_order_.front()->done; });
    std::shared_ptr<Job> job = std::move(in_order_.front());
    in_order_.pop_front();
    lock.unlock();
    std::fwrite(job->output.data(), 1, job->output.size(), stdout);
    lock.lock();
  }
  void Work() {
    RequestDecoder decoder;
    ResponseWriter writer(engine_, options_);
    std::unique_lock lock(mu_);
    while (true) {
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::shared_ptr<Job> job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job->output.reserve(job->input.size());
      DecideLines(job->input, engine_, decoder, writer, job->output, kMaxLine);
      job->input = std::string();
      lock.lock();
      job->done = true;
      done_cv_.notify_all();
    }
  }

  const Engine& engine_;
  const ResponseOptions options_;
  const size_t max_in_flight_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<Job>> queue_;     // GUARDED_BY(mu_): waiting for a worker
  std::deque<std::shared_ptr<Job>> in_order_;  // GUARDED_BY(mu_): submitted, not yet written
  bool stopping_ = false;                      // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

}  // namespace

int RunDecide(const DecideOptions& o) {
  auto engine = LoadEngine(o.policy);
  if (!engine) return kExitPolicyInvalid;
  std::FILE* in = stdin;
  if (!o.requests.empty()) {
    in = std::fopen(o.requests.c_str(), "rb");
    if (in == nullptr) {
      PrintError(fmt::format("cannot open `{}`: {}", o.requests, std::strerror(errno)));
      return kExitIo;
    }
  }
  const unsigned threads =
      o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  int read_errno = 0;
  {
    BlockPipeline pipeline(*engine, ResponseOptions{o.explain}, threads);
    std::string pending;    // input read but not yet submitted: an incomplete last line
    bool skipping = false;  // inside an over-long line, dropped up to its newline
    std::vector<char> buf(kBlockSize);
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), in)) > 0) {
      std::string_view chunk(buf.data(), n);
      if (skipping) {
        const size_t nl = chunk.find('\n');
        if (nl == std::string_view::npos) continue;
        chunk.remove_prefix(nl + 1);
        skipping = false;
      }
      pending.append(chunk);
      const size_t last = pending.rfind('\n');
      if (last != std::string::npos && pending.size() >= kBlockSize / 2) {
        std::string rest = pending.substr(last + 1);
        pending.resize(last + 1);
        pipeline.Submit(std::move(pending));
        pending = std::move(rest);
      } else if (last == std::string::npos && pending.size() > kMaxLine) {
        // A line with no end in sight: answer it now, in order, and drop the rest of it, so that
        // memory stays bounded. (A long line that does end is refused in DecideLines.)
        std::string answer;
        ResponseWriter(*engine).WriteInvalid(answer, "null", LineTooLongError(kMaxLine));
        pipeline.Drain();
        std::fwrite(answer.data(), 1, answer.size(), stdout);
        pending.clear();
        skipping = true;
      }
    }
    if (std::ferror(in) != 0) read_errno = errno;  // the last fread's
    if (!pending.empty() && !skipping) pipeline.Submit(std::move(pending));
    pipeline.Drain();
  }
  const bool read_error = std::ferror(in) != 0;
  if (in != stdin) std::fclose(in);
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    PrintError("cannot write the output");
    return kExitIo;
  }
  if (read_error) {
    PrintError(fmt::format("cannot read the requests from `{}`: {}",
                           o.requests.empty() ? "-" : o.requests,
                           read_errno != 0 ? std::strerror(read_errno) : "read error"));
    return kExitIo;
  }
  return kExitOk;
}

namespace {

// Loads the policy and calls fn(engine, index, at, status) for each agreement --id selects, at
// --at (or now). Returns the exit code.
template <typename Fn>
int ForEachAgreementStatus(const AgreementOptions& o, Fn&& fn) {
  auto engine = LoadEngine(o.policy);
  if (!engine) return kExitPolicyInvalid;
  auto selected = SelectAgreements(*engine, o.id);
  if (!selected) return kExitUsage;
  for (int32_t g : *selected) {
    auto at = ResolveAt(o.at, engine->agreement(g).zone);
    if (!at) return kExitUsage;
    auto status = engine->Status(g, *at);
    if (!status) {
      PrintError(status.error().message);
      return kExitPolicyInvalid;
    }
    fn(*engine, g, *at, *status);
  }
  return kExitOk;
}

}  // namespace

int RunAgreementList(const AgreementOptions& o) {
  return ForEachAgreementStatus(
      o, [&](const Engine& e, int32_t g, Instant at, const AgreementStatus& status) {
        const Agreement& a = e.agreement(g);
        if (o.json) {
          PrintJson(AgreementJson(e, g, at, status));
        } else {
          fmt::print("{:<18} {:<15} since {}  {:<12} {}\n", a.id, PartyList(a.parties),
                     FormatInstant(a.in_force, a.zone).substr(0, 10),
                     a.term ? "term " + FormatDuration(*a.term) : std::string("no term"),
                     AgreementStateName(status.state));
        }
      });
}

int RunAgreementStatus(const AgreementOptions& o) {
  return ForEachAgreementStatus(
      o, [&](const Engine& e, int32_t g, Instant at, const AgreementStatus& status) {
        if (o.json) {
          PrintJson(AgreementStatusJson(e, g, at, status));
        } else {
          fmt::print("{} at {}: {}\n", e.agreement(g).id, FormatInstant(at, e.agreement(g).zone),
                     StatusLine(e, g, status));
        }
      });
}

int RunAgreementTimeline(const AgreementOptions& o) {
  auto engine = LoadEngine(o.policy);
  if (!engine) return kExitPolicyInvalid;
  auto selected = SelectAgreements(*engine, o.id);
  if (!selected) return kExitUsage;
  for (int32_t g : *selected) {
    const Agreement& a = engine->agreement(g);
    auto horizon = ResolveAt(o.at, a.zone);
    if (!horizon) return kExitUsage;
    auto timeline = Timeline(a, *horizon);
    if (!timeline) {
      PrintError(timeline.error().message);
      return kExitPolicyInvalid;
    }
    if (o.json) {
      PrintJson(TimelineJson(a, *timeline));
    } else {
      fmt::print("{} — {}\n", a.id, a.title);
      for (const TimelineEntry& t : *timeline) {
        fmt::print("  {}  {}\n", FormatInstant(t.at, a.zone), t.what);
      }
    }
  }
  return kExitOk;
}

int RunFlows(const FlowsOptions& o) {
  auto zone = ParseZoneOffset(o.zone);
  if (!zone) {
    PrintError(fmt::format("--zone: {}", zone.error().message));
    return kExitUsage;
  }
  auto engine = LoadEngine(o.policy);
  if (!engine) return kExitPolicyInvalid;
  auto at = ResolveAt(o.at, *zone);
  if (!at) return kExitUsage;
  const int32_t n = engine->party_count();
  if (o.json) {
    PrintJson(FlowsJson(*engine, *at, *zone));
    return kExitOk;
  }
  fmt::print("Flows at {}\n\n", FormatInstant(*at, *zone));
  PrintFlowMatrix(*engine, *at, "  ");
  fmt::print("\n");
  for (int32_t a = 0; a < n; ++a) {
    for (int32_t b = 0; b < n; ++b) {
      if (a == b) continue;
      const Flow f = engine->FlowAt(a, b, *at);
      const Party& from = engine->party(a);
      const Party& to = engine->party(b);
      if (!f.allowed) {
        fmt::print("  {} → {}: no ({}{})\n", from.id, to.id, ReasonName(f.reason),
                   f.hub >= 0 ? fmt::format(": only through {}", engine->party(f.hub).id) : "");
        continue;
      }
      std::string levels;
      for (size_t l = 0; l < f.level_map.size(); ++l) {
        levels += fmt::format("{}{}→{}", levels.empty() ? "" : ", ", from.levels[l].id,
                              LevelName(to, f.level_map[l]));
      }
      const Agreement& g = engine->agreement(f.agreement);
      fmt::print("  {} → {}: yes under {} (scope {}); levels {}\n", from.id, to.id, g.id,
                 PartyList(g.scope), levels);
    }
  }
  return kExitOk;
}

int RunReplay(const ReplayOptions& o) {
  auto zone = ParseZoneOffset(o.zone);
  if (!zone) {
    PrintError(fmt::format("--zone: {}", zone.error().message));
    return kExitUsage;
  }
  auto engine = LoadEngine(o.policy);
  if (!engine) return kExitPolicyInvalid;
  // What happened at each key instant: entry into force, every event and every end.
  std::map<Instant, std::vector<std::string>> happenings;
  for (int32_t g = 0; g < engine->agreement_count(); ++g) {
    const Agreement& a = engine->agreement(g);
    auto timeline = Timeline(a, a.in_force);
    if (!timeline) {
      PrintError(timeline.error().message);
      return kExitPolicyInvalid;
    }
    for (const TimelineEntry& t : *timeline) {
      if (t.kind == TimelineEntry::Kind::kAnniversary) continue;
      happenings[t.at].push_back(fmt::format("{}: {}", a.id, t.what));
    }
  }
  const Policy& p = engine->policy();
  fmt::print("accord replay of {}: {} parties, {} agreements, {} key instants\n", o.policy,
             p.parties.size(), p.agreements.size(), happenings.size());
  for (const auto& [at, what] : happenings) {
    fmt::print("\n━━ {} ━━\n", FormatInstant(at, *zone));
    for (const std::string& w : what) fmt::print("  • {}\n", w);
    fmt::print("  agreements:\n");
    for (int32_t g = 0; g < engine->agreement_count(); ++g) {
      auto status = engine->Status(g, at);
      if (!status) continue;
      fmt::print("    {:<16} {}\n", engine->agreement(g).id, StatusLine(*engine, g, *status));
    }
    fmt::print("  flows (may the row's party release to the column's?):\n");
    PrintFlowMatrix(*engine, at, "    ");
  }
  return kExitOk;
}

}  // namespace accord::cli
