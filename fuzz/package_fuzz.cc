// libFuzzer target: the node's exchange formats — the signed envelope, and every body it can
// carry (release and forward packages, notices, receipts), parsed directly too since a fuzzer
// cannot forge the signature that guards them in Node::Receive — a partner's public key file
// (`accord keys import`), and a partner's log entry, which packages and receipts carry as
// evidence.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "audit.h"
#include "wire.h"

namespace wire = accord::node_internal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const accord::ByteView input(data, size);
  if (auto envelope = wire::ParseEnvelope(input, 1 << 20)) {
    (void)wire::ParseAnyBody(envelope->kind, envelope->body);
    // What parses re-encodes to something that parses to the same encoding.
    const accord::Bytes once = wire::EncodeEnvelope(*envelope);
    auto again = wire::ParseEnvelope(once, 1 << 20);
    if (!again || wire::EncodeEnvelope(*again) != once) __builtin_trap();
  }
  for (std::string_view kind :
       {"release", "consent", "reclassify", "destroy", "report", "receipt"}) {
    (void)wire::ParseAnyBody(kind, input);
  }
  // What parses re-encodes to something that parses to the same encoding.
  if (auto body = wire::ParsePackageBody(input)) {
    const accord::Bytes once = wire::EncodePackageBody(*body);
    auto again = wire::ParsePackageBody(once);
    if (!again || wire::EncodePackageBody(*again) != once) __builtin_trap();
    (void)wire::EncodeLabel(body->label);
  }
  for (std::string_view kind : {"consent", "reclassify", "destroy"}) {
    if (auto notice = wire::ParseNoticeBody(kind, input)) {
      const accord::Bytes once = wire::EncodeNoticeBody(*notice);
      auto again = wire::ParseNoticeBody(kind, once);
      if (!again || wire::EncodeNoticeBody(*again) != once) __builtin_trap();
    }
  }
  if (auto receipt = wire::ParseReceiptBody(input)) {
    const accord::Bytes once = wire::EncodeReceiptBody(*receipt);
    auto again = wire::ParseReceiptBody(once);
    if (!again || wire::EncodeReceiptBody(*again) != once) __builtin_trap();
  }
  if (auto notice = wire::ParseNoticeBody("report", input)) {
    auto again = wire::ParseNoticeBody("report", wire::EncodeNoticeBody(*notice));
    if (!again || again->text != notice->text) __builtin_trap();
  }
  // A partner's public key file: what parses encodes to what parses to the same keys.
  if (auto keys =
          wire::ParsePublicKeys(std::string_view(reinterpret_cast<const char*>(data), size))) {
    auto again = wire::ParsePublicKeys(wire::EncodePublicKeys(*keys));
    if (!again || again->party != keys->party || again->sign != keys->sign ||
        again->wrap != keys->wrap) {
      __builtin_trap();
    }
  }
  // A log entry: what decodes encodes to what decodes to the same encoding.
  if (auto entry = wire::DecodeEntry(input)) {
    const accord::Bytes once = wire::EncodeEntry(*entry);
    auto again = wire::DecodeEntry(once);
    if (!again || wire::EncodeEntry(*again) != once) __builtin_trap();
  }
  return 0;
}
