// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside std::regex's
// std::function members (as in schema/pattern.cpp): the pragma must precede every include.
#if defined(__SANITIZE_ADDRESS__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "daemon/pipetest/test_file.h"

#include "daemon/config/reader.h"
#include "daemon/schema/rapidjson.h"


#include <charconv>
#include <map>
#include <regex>

namespace kpipe::pipetest {
namespace {

namespace fs = std::filesystem;
using config::detail::Context;
using config::detail::Diagnostics;
using config::detail::Field;
using config::detail::Need;
using config::detail::ObjectReader;
using config::detail::quote;

constexpr size_t kMaxTestFileBytes = size_t{4} << 20;
// value_file may hold a deliberately oversized message (the size stage), so more than a config.
constexpr size_t kMaxValueFileBytes = size_t{64} << 20;
constexpr size_t kMaxJsonBytes = size_t{16} << 20;
constexpr int kMaxJsonDepth = 256;

// The text of a scalar, taken literally: test data is not interpolated (`${` may well be data).
std::optional<std::string> literal(Context& context, const Field& field,
                                   std::string_view what = "a string") {
  if (!field.value.IsScalar()) {
    context.error(
        field, "expected " + std::string(what) + ", got " + config::detail::describe(field.value));
    return std::nullopt;
  }
  return field.value.Scalar();
}

// A map of header name -> string value, in file order.
Headers readHeaders(Context& context, const Field& field, bool expectation) {
  Headers headers;
  config::detail::readObject(context, field, [&](ObjectReader& h) {
    h.forEach([&](const Field& entry) {
      if (expectation && entry.name.starts_with("kpipe.")) {
        context.errorAtKey(entry,
                           "kpipe.* headers are added by kpipe; expect them with stage and reason");
        return;
      }
      if (auto value = literal(context, entry, "a string (header values are text)")) {
        headers.emplace_back(entry.name, std::move(*value));
      }
    });
  });
  return headers;
}

class CaseReader {
 public:
  CaseReader(Context& context, const TestFile& file, const ParseOptions& options)
      : context_(context), file_(file), options_(options) {}

  void readCase(ObjectReader& c, Case& out) {
    if (auto name = c.field("name", Need::Required)) {
      if (auto text = literal(context_, *name)) {
        if (text->empty()) {
          context_.error(*name, "a case needs a name");
        } else if (auto [it, inserted] = names_.emplace(*text, name->key_mark.line + 1);
                   !inserted) {
          context_.error(*name, "duplicate case name " + quote(*text) + " (first at line " +
                                    std::to_string(it->second) + ")");
        }
        out.name = std::move(*text);
      }
    }
    if (auto input = c.field("input", Need::Required)) {
      if (input->value.IsSequence()) {
        if (input->value.size() == 0) context_.error(*input, "no input messages");
        for (size_t i = 0; i < input->value.size(); ++i) {
          YAML::Node element = input->value[i];
          Field f{"", input->path + "[" + std::to_string(i) + "]", element.Mark(), element};
          out.input.push_back(readMessage(f));
        }
      } else if (input->value.IsMap()) {
        out.input.push_back(readMessage(*input));
      } else {
        context_.error(*input,
                       "expected a message (a map with value, key, headers) or a list of "
                       "messages, got " +
                           config::detail::describe(input->value));
      }
    }
    if (auto expect =
            c.field("expect", options_.expect_optional ? Need::Optional : Need::Required)) {
      out.expect.emplace();
      config::detail::readObject(context_, *expect,
                                 [&](ObjectReader& e) { readExpectation(e, *out.expect); });
    }
  }

 private:
  Message readMessage(const Field& field) {
    Message message;
    config::detail::readObject(context_, field, [&](ObjectReader& m) {
      if (auto key = m.field("key")) {
        if (!key->value.IsNull()) message.key = literal(context_, *key);
      }
      // Exactly one way of giving the value.
      std::optional<Field> value = m.field("value");
      std::optional<Field> text = m.field("value_text");
      std::optional<Field> file = m.field("value_file");
      bool tombstone = false;
      m.scalar("tombstone", tombstone, config::detail::boolean());
      int given = (value ? 1 : 0) + (text ? 1 : 0) + (file ? 1 : 0) + (tombstone ? 1 : 0);
      if (given == 0 && m.isMap()) {
        context_.diagnostics().error(m.self().valueMark(), m.self().path,
                                     "missing the value: give one of value, value_text, "
                                     "value_file or tombstone: true");
      } else if (given > 1) {
        m.error(value ? "value" : "value_text",
                "value, value_text, value_file and tombstone exclude each other");
      } else if (value) {
        JsonResult json = yamlToJson(value->value);
        if (json.error) {
          context_.error(*value, *json.error);
        } else {
          message.value = std::move(json.json);
        }
      } else if (text) {
        message.value = literal(context_, *text);
      } else if (file) {
        if (auto name = literal(context_, *file, "a file name")) {
          fs::path path =
              fs::path(*name).is_relative() ? file_.path.parent_path() / *name : fs::path(*name);
          std::string error;
          message.value =
              config::detail::readLimitedFile(path, kMaxValueFileBytes, "a value_file", error);
          if (!message.value) context_.error(*file, path.string() + ": " + error);
        }
      }
      if (auto headers = m.field("headers")) {
        message.headers = readHeaders(context_, *headers, false);
      }
    });
    return message;
  }

  void readExpectation(ObjectReader& e, Expectation& out) {
    pipeline::Route route{};
    if (e.scalar("route", route,
                 config::detail::oneOf<pipeline::Route>({{"output", pipeline::Route::Output},
                                                         {"error", pipeline::Route::Error},
                                                         {"audit", pipeline::Route::Audit},
                                                         {"drop", pipeline::Route::Drop}}))) {
      out.route = route;
    }
    if (auto key = e.field("key")) {
      if (key->value.IsNull()) {
        out.expect_no_key = true;
      } else {
        out.key = literal(context_, *key);
      }
    }
    int32_t partition = 0;
    if (e.scalar("partition", partition, config::detail::integerIn<int32_t>(0))) {
      if (partition >= file_.partitions) {
        e.error("partition", "partition " + std::to_string(partition) + " does not exist with " +
                                 std::to_string(file_.partitions) +
                                 " partitions (see partitions:)");
      } else {
        out.partition = partition;
      }
    }
    std::vector<std::pair<std::string, std::string>> stages;
    for (std::string_view s : {pipeline::stage::kSize, pipeline::stage::kDecode,
                               pipeline::stage::kKey, pipeline::stage::kId, pipeline::stage::kType,
                               pipeline::stage::kSchema, pipeline::stage::kDedup}) {
      stages.emplace_back(std::string(s), std::string(s));
    }
    std::string stage;
    if (e.scalar("stage", stage, config::detail::oneOf<std::string>(std::move(stages)))) {
      out.stage = stage;
    }
    if (auto reason = e.field("reason")) out.reason = literal(context_, *reason);
    if (auto regex = e.field("reason_regex")) {
      if (auto text = literal(context_, *regex, "a regular expression")) {
        try {
          std::regex compiled(*text, std::regex::ECMAScript);
          out.reason_regex = std::move(*text);
        } catch (const std::regex_error& error) {
          context_.error(*regex, "not a valid regular expression: " + std::string(error.what()));
        }
      }
    }
    if (auto headers = e.field("headers")) out.headers = readHeaders(context_, *headers, true);

    // Expectations that can never hold are mistakes in the test, not in the pipeline.
    if (out.route == pipeline::Route::Output && (out.stage || out.reason || out.reason_regex)) {
      e.error(out.stage    ? "stage"
              : out.reason ? "reason"
                           : "reason_regex",
              "an output record has no stage or reason");
    }
    if (out.route != pipeline::Route::Output && out.partition) {
      e.error("partition", "partition is checked for output records only");
    }
    if (out.route == pipeline::Route::Drop &&
        (out.key || out.expect_no_key || !out.headers.empty())) {
      e.error(!out.headers.empty() ? "headers" : "key", "a dropped message writes no record");
    }
  }

  Context& context_;
  const TestFile& file_;
  const ParseOptions& options_;
  std::map<std::string, int> names_;  // case name -> line
};

// --- YAML -> JSON ------------------------------------------------------------------------------

bool matches(std::string_view text, const std::regex& re) {
  return std::regex_match(text.begin(), text.end(), re);
}

const std::regex& jsonNumber() {
  static const std::regex re(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
  return re;
}

class JsonConverter {
 public:
  JsonResult convert(const YAML::Node& node) {
    JsonResult result;
    write(node, 0);
    if (error_) {
      result.error = std::move(error_);
    } else {
      result.json.assign(buffer_.GetString(), buffer_.GetSize());
    }
    return result;
  }

 private:
  void write(const YAML::Node& node, int depth) {
    if (error_) return;
    if (depth > kMaxJsonDepth || buffer_.GetSize() > kMaxJsonBytes) {
      error_ = "value is nested too deeply or too large (aliases?)";
      return;
    }
    switch (node.Type()) {
      case YAML::NodeType::Map:
        writer_.StartObject();
        for (const auto& pair : node) {
          if (!pair.first.IsScalar()) {
            error_ = "JSON object keys are strings; got " + config::detail::describe(pair.first);
            return;
          }
          writer_.Key(pair.first.Scalar().data(), pair.first.Scalar().size());
          write(pair.second, depth + 1);
        }
        writer_.EndObject();
        return;
      case YAML::NodeType::Sequence:
        writer_.StartArray();
        for (const auto& element : node) write(element, depth + 1);
        writer_.EndArray();
        return;
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        writer_.Null();
        return;
    }
  }

  void scalar(const YAML::Node& node) {
    const std::string& text = node.Scalar();
    // yaml-cpp tags quoted scalars "!" and plain ones "?"; an explicit !!str is a string too.
    if (node.Tag() != "?") {
      writer_.String(text.data(), text.size());
      return;
    }
    std::string_view type = plainScalarType(text);
    if (type == "null") {
      writer_.Null();
    } else if (type == "bool") {
      writer_.Bool(text[0] == 't' || text[0] == 'T');
    } else if (type == "int" || type == "float") {
      number(text, type == "int");
    } else {
      writer_.String(text.data(), text.size());
    }
  }

  void number(const std::string& text, bool integer) {
    if (matches(text, jsonNumber())) {
      writer_.RawValue(text.data(), text.size(), rapidjson::kNumberType);
      return;
    }
    std::string_view digits = text;
    bool negative = false;
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
      negative = digits[0] == '-';
      digits.remove_prefix(1);
    }
    if (integer) {
      int base = 10;
      if (digits.starts_with("0x")) base = 16;
      if (digits.starts_with("0o")) base = 8;
      if (base != 10) digits.remove_prefix(2);
      uint64_t value = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
      if (ec != std::errc() || ptr != digits.data() + digits.size()) {
        error_ = quote(text) +
                 " is too large for a JSON integer here; quote it or write it in "
                 "decimal";
        return;
      }
      std::string out = (negative ? "-" : "") + std::to_string(value);
      writer_.RawValue(out.data(), out.size(), rapidjson::kNumberType);
      return;
    }
    if (text.find_first_of("nN") != std::string::npos) {  // .inf, .nan
      error_ = quote(text) + " has no JSON form; quote it to send a string";
      return;
    }
    // "1.", ".5", "+2.0": valid YAML floats that JSON writes differently.
    std::string normalized = negative ? "-" : "";
    std::string rest(digits);
    if (rest.starts_with(".")) rest.insert(0, "0");
    if (size_t dot = rest.find('.');
        dot != std::string::npos &&
        (dot + 1 == rest.size() || !std::isdigit(static_cast<unsigned char>(rest[dot + 1])))) {
      rest.insert(dot + 1, "0");
    }
    while (rest.size() > 1 && rest[0] == '0' && std::isdigit(static_cast<unsigned char>(rest[1]))) {
      rest.erase(0, 1);
    }
    normalized += rest;
    if (!matches(normalized, jsonNumber())) {
      error_ = quote(text) + " has no JSON form; quote it to send a string";
      return;
    }
    writer_.RawValue(normalized.data(), normalized.size(), rapidjson::kNumberType);
  }

  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_{buffer_};
  std::optional<std::string> error_;
};

}  // namespace

std::string_view plainScalarType(std::string_view text) {
  // YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1023-core-schema).
  static const std::regex kNull(R"(~|null|Null|NULL|)");
  static const std::regex kBool(R"(true|True|TRUE|false|False|FALSE)");
  static const std::regex kInt(R"([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)");
  static const std::regex kFloat(
      R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.nan|\.NaN|\.NAN)");
  if (matches(text, kNull)) return "null";
  if (matches(text, kBool)) return "bool";
  if (matches(text, kInt)) return "int";
  if (matches(text, kFloat)) return "float";
  return "str";
}

JsonResult yamlToJson(const YAML::Node& node) { return JsonConverter().convert(node); }

ParseResult parseTestFile(const fs::path& path, const ParseOptions& options, std::string display) {
  if (display.empty()) display = path.string();
  Diagnostics diagnostics(display);
  ParseResult result;
  TestFile file;
  file.path = path;
  file.display = display;

  std::optional<YAML::Node> root =
      config::detail::parseYamlFile(path, diagnostics, kMaxTestFileBytes, "a test file");
  if (root) {
    if (root->IsNull()) {
      diagnostics.fileError("", "file is empty; a test file needs at least cases:");
    } else if (!root->IsMap()) {
      diagnostics.error(root->Mark(), "",
                        "expected a map (pipeline, partitions, cases) at the top level, got " +
                            config::detail::describe(*root));
    }
  }
  if (diagnostics.count() > 0) {
    result.errors = diagnostics.take();
    return result;
  }

  file.root = *root;
  config::EnvLookup env = config::processEnvironment();
  Context context(diagnostics, env);
  CaseReader cases(context, file, options);
  config::detail::readObject(context, Field{"", "", YAML::Mark(), file.root}, [&](ObjectReader& r) {
    if (auto pipeline = r.field("pipeline")) {
      if (auto name = context.scalar(*pipeline, config::detail::identifier())) {
        file.pipeline = *name;
        file.pipeline_where = config::SourceLocation{display, pipeline->valueMark().line + 1,
                                                     pipeline->valueMark().column + 1};
      }
    }
    // Read before the cases: their expected partitions are checked against it.
    r.scalar("partitions", file.partitions, config::detail::integerIn<int32_t>(1, 1'000'000));
    r.scalar("shared_store", file.shared_store, config::detail::boolean());
    std::optional<Field> list = r.field("cases", Need::Required);
    if (!list) return;
    if (!list->value.IsSequence()) {
      context.error(*list,
                    "expected a list of cases, got " + config::detail::describe(list->value));
      return;
    }
    if (list->value.size() == 0) context.error(*list, "no cases");
    for (size_t i = 0; i < list->value.size(); ++i) {
      YAML::Node element = list->value[i];
      Field f{"", "cases[" + std::to_string(i) + "]", element.Mark(), element};
      Case c;
      c.where = config::SourceLocation{display, element.Mark().line + 1, element.Mark().column + 1};
      config::detail::readObject(context, f,
                                 [&](ObjectReader& reader) { cases.readCase(reader, c); });
      file.cases.push_back(std::move(c));
    }
  });
  if (diagnostics.count() > 0) {
    result.errors = diagnostics.take();
    return result;
  }
  result.file = std::move(file);
  return result;
}

}  // namespace kpipe::pipetest
