// libFuzzer target: the server's API request decoder (routing, percent-decoding, the JSON body of
// a new object, the lines of a batch of envelopes, the sizes of a batch of consistency proofs),
// the JSON Lines loop of POST /v1/decide on the GSOMIA example policy, the reading of a line of
// a partner's answer to a batch, and of a partner's error body. No network: these are the pure
// functions behind the HTTPS transport.
//
// Input: the method, a newline, the target, a newline, then the body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "accord/config.h"
#include "accord/engine.h"
#include "accord/request_json.h"
#include "accord/utf8.h"
#include "api.h"
#include "decide_lines.h"

namespace {

namespace api = accord::server_internal;
using accord_fuzz::AnsweredLines;
using accord_fuzz::NextLine;

const accord::Engine& Example() {
  static const accord::Engine engine = [] {
    auto policy = accord::LoadPolicyDir(ACCORD_SOURCE_DIR "/examples/gsomia");
    if (!policy) {
      std::abort();
    }
    auto compiled = accord::Engine::Compile(std::move(*policy));
    if (!compiled) {
      std::abort();
    }
    return std::move(*compiled);
  }();
  return engine;
}

// The lines of a decide body as the route counts them: a last line without its newline counts.
size_t LineCount(std::string_view body) {
  return static_cast<size_t>(std::count(body.begin(), body.end(), '\n')) +
         (!body.empty() && body.back() != '\n' ? 1 : 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view method = NextLine(input);
  const std::string_view target = NextLine(input);
  const std::string_view body = input;

  // A partner's error body becomes one short line of UTF-8 for the log and the peers' status:
  // "code: message" or "HTTP 502: body", each part cut to 200 bytes and an ellipsis.
  const std::string message = api::ErrorMessage(502, body);
  if (message.empty() || message.size() > 213 || !accord::IsUtf8(message) ||
      message.find_first_of("\n\r") != std::string::npos) {
    __builtin_trap();
  }

  // The sending node's reading of a line of a partner's answer to a batch.
  const api::BatchAnswer answer = api::ReadBatchAnswer(body);
  if (answer.error && (answer.status < 100 || answer.status > 599 || answer.message.empty())) {
    __builtin_trap();
  }

  auto request = api::DecodeApiRequest(method, target, body);
  if (!request) {
    const api::ApiError& e = request.error();
    // Every refusal is a client error with a stable code, and a 405 names the allowed methods;
    // a 413 refuses only a decide body of too many lines (one that decodes has few enough).
    if (e.status == 413 && LineCount(body) <= api::kMaxDecideLines) {
      __builtin_trap();
    }
    if (e.status != 400 && e.status != 404 && e.status != 405 && e.status != 413) {
      __builtin_trap();
    }
    if (e.code.empty() || e.message.empty()) {
      __builtin_trap();
    }
    if ((e.status == 405) != !e.allow.empty()) {
      __builtin_trap();
    }
    const std::string error = api::ErrorBody(e.code, e.message);
    if (!error.starts_with(R"({"error":{"code":")") || !error.ends_with("\"}}")) {
      __builtin_trap();
    }
    if (error.find('\n') != std::string::npos) {
      __builtin_trap();
    }
    return 0;
  }
  switch (request->route) {
    case api::Route::kDecide: {
      if (request->lines.data() != body.data() || request->lines.size() != body.size() ||
          LineCount(body) > api::kMaxDecideLines) {
        __builtin_trap();
      }
      static accord::RequestDecoder decoder;
      static accord::ResponseWriter writer(Example());
      std::string out;
      accord::DecideLines(request->lines, Example(), decoder, writer, out);
      // One answer per non-blank line, each a line of its own.
      if (!out.empty() && out.back() != '\n') {
        __builtin_trap();
      }
      if (static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) != AnsweredLines(body)) {
        __builtin_trap();
      }
      break;
    }
    case api::Route::kCreateObject:
      if (method != "POST") {
        __builtin_trap();
      }
      for (const auto& list :
           {request->object.topics, request->object.compartments, request->object.rel_to}) {
        for (const auto& item : list) {
          if (item.empty()) {
            __builtin_trap();
          }
        }
      }
      break;
    case api::Route::kGetObject:
      if (method != "GET" || request->object_id.size() > target.size()) {
        __builtin_trap();
      }
      break;
    case api::Route::kRelease:
    case api::Route::kForward:
    case api::Route::kConsent:
    case api::Route::kReclassify:
    case api::Route::kDestroy:
    case api::Route::kReport:
      // An action names its object and carries the fields its body must have.
      if (method != "POST" || request->object_id.empty()) {
        __builtin_trap();
      }
      if ((request->route == api::Route::kRelease || request->route == api::Route::kForward ||
           request->route == api::Route::kConsent) &&
          request->to.empty() && body.find("\"to\"") == std::string_view::npos) {
        __builtin_trap();
      }
      break;
    case api::Route::kLogConsistencies:
      // One to kMaxConsistencySizes sizes, none of them 0.
      if (method != "POST" || request->sizes.empty() ||
          request->sizes.size() > api::kMaxConsistencySizes) {
        __builtin_trap();
      }
      for (const uint64_t from : request->sizes) {
        if (from == 0) {
          __builtin_trap();
        }
      }
      break;
    case api::Route::kEnvelope:
      if (method != "POST" || request->envelope.data() != body.data()) {
        __builtin_trap();
      }
      break;
    case api::Route::kEnvelopes: {
      // The body cut into its lines, each with its newline, in order, none blank, no more than
      // the limit.
      if (method != "POST" || request->envelopes.empty() ||
          request->envelopes.size() > accord::kMaxBatchEnvelopes) {
        __builtin_trap();
      }
      const char* at = body.data();
      for (const std::string_view line : request->envelopes) {
        const size_t nl = line.find('\n');
        if (line.data() != at || line.empty() || line == "\n" || line == "\r\n" || line == "\r" ||
            (nl != std::string_view::npos && nl != line.size() - 1)) {
          __builtin_trap();
        }
        at += line.size();
      }
      if (at != body.data() + body.size()) {
        __builtin_trap();
      }
      break;
    }
    default:
      if (method != "GET") {
        __builtin_trap();
      }
      break;
  }
  return 0;
}
