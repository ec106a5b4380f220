#include "daemon/config/redact.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace kpipe::config {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool containsAny(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(),
                     [&](std::string_view word) { return text.find(word) != text.npos; });
}

// scheme://authority: the offsets of the authority, or npos when `url` is not one.
struct Authority {
  size_t begin = std::string_view::npos;
  size_t end = std::string_view::npos;
};

Authority authorityOf(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return {};
  for (char c : url.substr(0, scheme_end)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return {};
    }
  }
  const size_t begin = scheme_end + 3;
  size_t end = url.find_first_of("/?#", begin);
  if (end == std::string_view::npos) end = url.size();
  return {begin, end};
}

// The authority with the userinfo's password masked; "user:***@host", "***@host", "host".
std::string maskedAuthority(std::string_view authority) {
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(authority);
  std::string_view userinfo = authority.substr(0, at);
  std::string out;
  if (const size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
    out = std::string(userinfo.substr(0, colon)) + ":" + std::string(kRedacted);
  } else {
    out = std::string(kRedacted);
  }
  return out + "@" + std::string(authority.substr(at + 1));
}

}  // namespace

bool isSecretProperty(std::string_view name) {
  const std::string n = lower(name);
  if (containsAny(n, {"password", "secret", "credential", "jaas"})) return true;
  static constexpr std::array<std::string_view, 4> kSecret = {
      "sasl.oauthbearer.config", "sasl.oauthbearer.extensions", "ssl.key.pem", "ssl_key"};
  return std::find(kSecret.begin(), kSecret.end(), n) != kSecret.end();
}

bool isSecretHeader(std::string_view name) {
  const std::string n = lower(name);
  if (n == "cookie" || n == "set-cookie") return true;
  return containsAny(n, {"auth", "token", "secret", "password", "api-key", "apikey", "api_key",
                         "signature", "session"});
}

std::string redactUrl(std::string_view url) {
  const Authority authority = authorityOf(url);
  if (authority.begin == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, authority.begin));
  out += maskedAuthority(url.substr(authority.begin, authority.end - authority.begin));
  std::string_view rest = url.substr(authority.end);
  const size_t hash = rest.find('#');
  std::string_view fragment = hash == std::string_view::npos ? "" : rest.substr(hash);
  rest = rest.substr(0, hash);
  const size_t question = rest.find('?');
  out += rest.substr(0, question);
  if (question != std::string_view::npos) {
    std::string_view query = rest.substr(question + 1);
    out += '?';
    bool first = true;
    while (true) {
      const size_t amp = query.find('&');
      std::string_view param = query.substr(0, amp);
      if (!first) out += '&';
      first = false;
      if (!param.empty()) {
        const size_t eq = param.find('=');
        if (eq != std::string_view::npos) out += param.substr(0, eq + 1);
        out += kRedacted;
      }
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  if (!fragment.empty()) out += "#" + std::string(kRedacted);
  return out;
}

std::string redactSecretUrl(std::string_view url) {
  const Authority authority = authorityOf(url);
  if (authority.begin == std::string_view::npos) return std::string(kRedacted);
  std::string_view host = url.substr(authority.begin, authority.end - authority.begin);
  if (const size_t at = host.rfind('@'); at != std::string_view::npos) host = host.substr(at + 1);
  return std::string(url.substr(0, authority.begin)) + std::string(host) + "/" +
         std::string(kRedacted);
}

std::string shownValue(std::string_view value, bool secret) {
  return secret ? std::string(kRedacted) : redactUrl(value);
}

std::map<std::string, std::string> redactProperties(const std::map<std::string, std::string>& in,
                                                    const std::set<std::string>& from_files) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : in) {
    out[name] = shownValue(value, isSecretProperty(name) || from_files.contains(name));
  }
  return out;
}

std::map<std::string, std::string> redactHeaders(const std::map<std::string, std::string>& in,
                                                 const std::set<std::string>& from_files) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : in) {
    out[name] = shownValue(value, isSecretHeader(name) || from_files.contains(name));
  }
  return out;
}

}  // namespace kpipe::config
