// Test-only: builds decision requests as JSON Lines text, so that tests go through the real
// decoder. Not part of the library.
#ifndef ACCORD_SRC_POLICY_REQUEST_BUILDER_TESTING_H_
#define ACCORD_SRC_POLICY_REQUEST_BUILDER_TESTING_H_

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace accord::testing {

class RequestBuilder {
 public:
  static RequestBuilder Read(std::string at, std::string party, std::string clearance) {
    RequestBuilder b("read", std::move(at));
    b.root_["subject"] = boost::json::object{{"party", party},
                                             {"clearance", clearance},
                                             {"need_to_know", boost::json::array{}},
                                             {"compartments", boost::json::array{}}};
    return b;
  }
  static RequestBuilder Release(std::string at, std::string to) {
    RequestBuilder b("release", std::move(at));
    b.root_["to"] = to;
    return b;
  }
  static RequestBuilder Forward(std::string at, std::string holder, std::string to) {
    RequestBuilder b("forward", std::move(at));
    b.root_["holder"] = holder;
    b.root_["to"] = to;
    return b;
  }

  RequestBuilder& Object(std::string originator, std::string level) {
    object()["originator"] = originator;
    object()["level"] = level;
    return *this;
  }
  RequestBuilder& Topics(std::vector<std::string> v) { return List(object(), "topics", v); }
  RequestBuilder& Compartments(std::vector<std::string> v) {
    return List(object(), "compartments", v);
  }
  RequestBuilder& RelTo(std::vector<std::string> v) { return List(object(), "rel_to", v); }
  RequestBuilder& NeedToKnow(std::vector<std::string> v) {
    return List(subject(), "need_to_know", v);
  }
  RequestBuilder& Holds(std::vector<std::string> v) { return List(subject(), "compartments", v); }
  RequestBuilder& Released(std::string to, std::string at, std::string agreement) {
    object()["releases"].as_array().push_back(
        boost::json::object{{"to", to}, {"at", at}, {"agreement", agreement}});
    return *this;
  }
  RequestBuilder& Forwarded(std::string from, std::string to, std::string at,
                            std::string agreement) {
    object()["forwards"].as_array().push_back(
        boost::json::object{{"from", from}, {"to", to}, {"at", at}, {"agreement", agreement}});
    return *this;
  }
  RequestBuilder& Consent(std::string to, std::string at) {
    object()["consents"].as_array().push_back(boost::json::object{{"to", to}, {"at", at}});
    return *this;
  }
  RequestBuilder& Destroyed(std::string at) {
    object()["destroyed_at"] = at;
    return *this;
  }

  [[nodiscard]] std::string Json() const { return boost::json::serialize(root_); }

 private:
  RequestBuilder(std::string action, std::string at) {
    root_["id"] = "t";
    root_["action"] = action;
    root_["at"] = at;
    root_["object"] = boost::json::object{{"id", "obj-1"},
                                          {"originator", "KOR"},
                                          {"level", "II"},
                                          {"topics", boost::json::array{}},
                                          {"compartments", boost::json::array{}},
                                          {"rel_to", boost::json::array{}},
                                          {"releases", boost::json::array{}},
                                          {"forwards", boost::json::array{}},
                                          {"consents", boost::json::array{}},
                                          {"destroyed_at", nullptr}};
  }
  boost::json::object& object() { return root_["object"].as_object(); }
  boost::json::object& subject() { return root_["subject"].as_object(); }
  RequestBuilder& List(boost::json::object& o, const char* key, const std::vector<std::string>& v) {
    boost::json::array a;
    for (const auto& s : v) a.emplace_back(s);
    o[key] = std::move(a);
    return *this;
  }

  boost::json::object root_;
};

}  // namespace accord::testing

#endif  // ACCORD_SRC_POLICY_REQUEST_BUILDER_TESTING_H_
