#pragma once
// What must not be shown: secrets out of the config, masked before they reach a log line,
// `kpipe check` output, /status or the status page. One place decides, so that every printer
// masks the same things.
//
// - librdkafka properties: by name (isSecretProperty), and any property whose value was read
//   from a NAME_file (KafkaSpec::secret_properties);
// - HTTP headers: by name (isSecretHeader: Authorization, Cookie, X-Api-Key, ...), and any header
//   read from a NAME_file (HttpSinkSpec::secret_headers);
// - URLs: the password of the userinfo, query values and the fragment (redactUrl); a URL read
//   from url_file is shown as its scheme and host only (redactSecretUrl);
// - Redis URLs: StoreSpec::Redis::display already masks the password.
//
// Pure functions; thread-safe.

#include <map>
#include <set>
#include <string>
#include <string_view>

namespace kpipe::config {

// What a masked value is shown as.
inline constexpr std::string_view kRedacted = "***";

// Whether a librdkafka property's value is a secret: names containing "password", "secret",
// "credential" or "jaas", and sasl.oauthbearer.config, sasl.oauthbearer.extensions and the
// inline private keys (ssl.key.pem, ssl_key). Case-insensitive. Paths (ssl.key.location,
// sasl.kerberos.keytab) are not secrets; the files they name are.
bool isSecretProperty(std::string_view name);

// Whether an HTTP header's value is a secret: Authorization, Proxy-Authorization, Cookie,
// Set-Cookie, and names containing "token", "secret", "password", "api-key", "apikey",
// "signature", "session" or "auth". Case-insensitive.
bool isSecretHeader(std::string_view name);

// `url` with the password of its userinfo (a userinfo without ":" is masked whole: it is a
// token), every query value and the fragment replaced by ***:
//   https://user:pw@host/p?token=abc&x=1#f -> https://user:***@host/p?token=***&x=***#***
// Text that is not scheme://... is returned as it is.
std::string redactUrl(std::string_view url);

// For a URL that is a secret as a whole (read from url_file: its path may be the token, as in
// webhook URLs): scheme://host[:port]/*** .
std::string redactSecretUrl(std::string_view url);

// A property or header value as it may be shown: kRedacted when `secret`, else redactUrl of it
// (a value may be a URL with credentials, e.g. sasl.oauthbearer.token.endpoint.url).
std::string shownValue(std::string_view value, bool secret);

// Copies of the maps with the secret values masked: by name, and the names in `from_files`.
std::map<std::string, std::string> redactProperties(const std::map<std::string, std::string>& in,
                                                    const std::set<std::string>& from_files = {});
std::map<std::string, std::string> redactHeaders(const std::map<std::string, std::string>& in,
                                                 const std::set<std::string>& from_files = {});

}  // namespace kpipe::config
