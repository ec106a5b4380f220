// The outputs of `kpipe test`: text, JSON, JUnit XML, and the recorded test file.

#include "daemon/observe/utf8.h"
#include "daemon/pipetest/runner.h"
#include "daemon/schema/rapidjson.h"

#include <ostream>
#include <sstream>

namespace kpipe::pipetest {
namespace {

// Replaces invalid UTF-8 with U+FFFD: reasons quote message bytes cut at a byte count, and
// neither JSON nor XML readers accept a broken sequence.
std::string validUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (size_t length = observe::utf8Sequence(in.substr(i)); length > 0) {
      out.append(in.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string xmlEscape(std::string_view text) {
  std::string out;
  for (char ch : validUtf8(text)) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\n':
      case '\t':
        out += ch;
        break;
      default:
        // XML 1.0 has no form for other control characters, escaped or not.
        out += static_cast<unsigned char>(ch) < 0x20 ? '?' : ch;
    }
  }
  return out;
}

std::string describe(const Outcome& o) {
  std::string text = pipeline::routeName(o.route);
  if (!o.stage.empty()) text += " at stage " + o.stage;
  if (o.route != pipeline::Route::Drop) text += o.key ? ", key \"" + *o.key + "\"" : ", no key";
  if (o.partition) text += ", partition " + std::to_string(*o.partition);
  return text;
}

std::string location(const config::SourceLocation& where) {
  return where.line > 0 ? where.file + ":" + std::to_string(where.line) : where.file;
}

// The lines under a FAIL: what differs, then what came out.
std::string failureDetails(const CaseResult& c, std::string_view indent) {
  std::string text;
  for (const Mismatch& m : c.mismatches) {
    text += std::string(indent) + m.field + ": expected " + m.expected + ", got " + m.actual + "\n";
  }
  text += std::string(indent) + "actual: " + describe(c.actual) + "\n";
  // The reason in full: for the schema stage it explains every failure.
  if (!c.actual.reason.empty()) text += std::string(indent) + "reason: " + c.actual.reason + "\n";
  return text;
}

std::string failureSummary(const CaseResult& c) {
  std::string text;
  for (const Mismatch& m : c.mismatches) {
    if (!text.empty()) text += "; ";
    text += m.field + ": expected " + m.expected + ", got " + m.actual;
  }
  return text;
}

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void jsonString(JsonWriter& w, std::string_view text) {
  std::string valid = validUtf8(text);
  w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

void jsonError(JsonWriter& w, const config::ConfigError& e) {
  w.StartObject();
  w.Key("file");
  jsonString(w, e.where.file);
  w.Key("line");
  w.Int(e.where.line);
  w.Key("column");
  w.Int(e.where.column);
  w.Key("key_path");
  jsonString(w, e.key_path);
  w.Key("message");
  jsonString(w, e.message);
  w.Key("text");
  jsonString(w, e.str());
  w.EndObject();
}

void jsonOutcome(JsonWriter& w, const Outcome& o) {
  w.StartObject();
  w.Key("route");
  w.String(pipeline::routeName(o.route));
  if (!o.stage.empty()) {
    w.Key("stage");
    jsonString(w, o.stage);
    w.Key("reason");
    jsonString(w, o.reason);
  }
  if (o.route != pipeline::Route::Drop) {
    w.Key("key");
    if (o.key) {
      jsonString(w, *o.key);
    } else {
      w.Null();
    }
    w.Key("headers");
    w.StartObject();
    for (const auto& [name, value] : o.headers) {
      jsonString(w, name);
      jsonString(w, value);
    }
    w.EndObject();
  }
  if (o.partition) {
    w.Key("partition");
    w.Int(*o.partition);
  }
  w.EndObject();
}

// --- recording ---------------------------------------------------------------------------------

// A scalar node that reads back as a string, however it looks.
YAML::Node stringNode(const std::string& text) {
  YAML::Node node(text);
  node.SetTag("!");
  return node;
}

YAML::Node expectationOf(const Outcome& o) {
  YAML::Node expect(YAML::NodeType::Map);
  expect.SetStyle(YAML::EmitterStyle::Flow);
  expect["route"] = pipeline::routeName(o.route);
  if (o.route != pipeline::Route::Drop) {
    expect["key"] = o.key ? stringNode(*o.key) : YAML::Node(YAML::NodeType::Null);
  }
  if (o.partition) expect["partition"] = *o.partition;
  if (!o.stage.empty()) {
    expect["stage"] = o.stage;
    expect["reason"] = stringNode(o.reason);
  }
  return expect;
}

// yaml-cpp's own emitter writes a quoted "1" back as 1 (a number): walk the tree instead and
// quote every string whose plain form would read as something else.
void emit(YAML::Emitter& e, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      if (node.Style() == YAML::EmitterStyle::Flow) e << YAML::Flow;
      e << YAML::BeginMap;
      for (const auto& pair : node) {
        e << YAML::Key;
        emit(e, pair.first);
        e << YAML::Value;
        emit(e, pair.second);
      }
      e << YAML::EndMap;
      return;
    case YAML::NodeType::Sequence:
      if (node.Style() == YAML::EmitterStyle::Flow) e << YAML::Flow;
      e << YAML::BeginSeq;
      for (const auto& element : node) emit(e, element);
      e << YAML::EndSeq;
      return;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (!tag.empty() && tag != "?" && tag != "!") e << YAML::VerbatimTag(tag);
      if (tag == "!" && plainScalarType(node.Scalar()) != "str") e << YAML::DoubleQuoted;
      e << node.Scalar();
      return;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      e << YAML::Null;
      return;
  }
}

}  // namespace

void writeText(const Report& report, std::ostream& out) {
  if (!report.config_errors.empty() && report.files.empty()) {
    out << "kpipe test: nothing run: " << report.config_errors.size() << " error"
        << (report.config_errors.size() == 1 ? "" : "s") << " in " << report.config_file << "\n";
    return;
  }
  int recorded = 0;
  for (const FileResult& f : report.files) {
    if (!f.errors.empty()) {
      out << "ERROR " << f.file << ": " << f.errors.size() << " error"
          << (f.errors.size() == 1 ? "" : "s") << ", no case run\n";
      continue;
    }
    for (const CaseResult& c : f.cases) {
      if (report.recorded) {
        out << "RECORDED " << f.file << ": " << c.name << ": " << describe(c.actual) << "\n";
        ++recorded;
      } else if (c.passed()) {
        out << "PASS " << f.file << ": " << c.name << "\n";
      } else {
        out << "FAIL " << location(c.where) << ": " << c.name << "\n" << failureDetails(c, "    ");
      }
    }
  }
  if (report.recorded) {
    out << "recorded " << recorded << " case" << (recorded == 1 ? "" : "s");
  } else {
    out << report.passed() << " passed, " << report.failed() << " failed";
  }
  if (int errors = report.errors(); errors > 0) {
    out << ", " << errors << " error" << (errors == 1 ? "" : "s") << " in test files";
  }
  out << "\n";
}

void writeJson(const Report& report, std::ostream& out) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("config");
  jsonString(w, report.config_file);
  w.Key("ok");
  w.Bool(report.ok());
  w.Key("passed");
  w.Int(report.passed());
  w.Key("failed");
  w.Int(report.failed());
  w.Key("recorded");
  w.Bool(report.recorded);
  w.Key("errors");
  w.StartArray();
  for (const auto& e : report.config_errors) jsonError(w, e);
  w.EndArray();
  w.Key("files");
  w.StartArray();
  for (const FileResult& f : report.files) {
    w.StartObject();
    w.Key("file");
    jsonString(w, f.file);
    w.Key("pipeline");
    jsonString(w, f.pipeline);
    w.Key("errors");
    w.StartArray();
    for (const auto& e : f.errors) jsonError(w, e);
    w.EndArray();
    w.Key("cases");
    w.StartArray();
    for (const CaseResult& c : f.cases) {
      w.StartObject();
      w.Key("name");
      jsonString(w, c.name);
      w.Key("line");
      w.Int(c.where.line);
      w.Key("passed");
      w.Bool(c.passed());
      w.Key("mismatches");
      w.StartArray();
      for (const Mismatch& m : c.mismatches) {
        w.StartObject();
        w.Key("field");
        jsonString(w, m.field);
        w.Key("expected");
        jsonString(w, m.expected);
        w.Key("actual");
        jsonString(w, m.actual);
        w.EndObject();
      }
      w.EndArray();
      w.Key("actual");
      jsonOutcome(w, c.actual);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  out << buffer.GetString() << "\n";
}

void writeJunit(const Report& report, std::ostream& out) {
  int tests = 0;
  for (const FileResult& f : report.files) tests += static_cast<int>(f.cases.size());
  int files_with_errors = 0;
  for (const FileResult& f : report.files) files_with_errors += f.errors.empty() ? 0 : 1;
  int errors = files_with_errors + (report.config_errors.empty() ? 0 : 1);
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"kpipe test\" tests=\"" << tests + errors << "\" failures=\""
      << report.failed() << "\" errors=\"" << errors << "\">\n";
  // Problems that kept cases from running are errors of a pseudo test case, so that CI shows
  // them rather than an empty, green suite.
  auto errorCase = [&](const std::string& suite, const std::vector<config::ConfigError>& list) {
    std::string text;
    for (const auto& e : list) text += e.str() + "\n";
    out << "  <testsuite name=\"" << xmlEscape(suite)
        << "\" tests=\"1\" failures=\"0\" errors=\"1\">\n"
        << "    <testcase classname=\"kpipe.test\" name=\"load " << xmlEscape(suite) << "\">\n"
        << "      <error message=\"" << xmlEscape(list.front().str()) << "\" type=\"load\">"
        << xmlEscape(text) << "</error>\n"
        << "    </testcase>\n  </testsuite>\n";
  };
  if (!report.config_errors.empty()) errorCase(report.config_file, report.config_errors);
  for (const FileResult& f : report.files) {
    if (!f.errors.empty()) {
      errorCase(f.file, f.errors);
      continue;
    }
    out << "  <testsuite name=\"" << xmlEscape(f.file) << "\" tests=\"" << f.cases.size()
        << "\" failures=\"" << f.failed() << "\" errors=\"0\">\n";
    for (const CaseResult& c : f.cases) {
      out << "    <testcase classname=\"" << xmlEscape(f.pipeline) << "\" name=\""
          << xmlEscape(c.name) << "\" file=\"" << xmlEscape(c.where.file) << "\" line=\""
          << c.where.line << "\"";
      if (c.passed()) {
        out << "/>\n";
        continue;
      }
      out << ">\n      <failure message=\"" << xmlEscape(failureSummary(c))
          << "\" type=\"mismatch\">" << xmlEscape(failureDetails(c, "")) << "</failure>\n"
          << "    </testcase>\n";
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
}

std::string recordedText(const TestFile& file, const FileResult& result) {
  YAML::Node root = YAML::Clone(file.root);
  YAML::Node cases = root["cases"];
  for (size_t i = 0; i < result.cases.size() && i < cases.size(); ++i) {
    YAML::Node c = cases[i];
    c["expect"] = expectationOf(result.cases[i].actual);
  }
  YAML::Emitter e;
  e.SetIndent(2);
  emit(e, root);
  return std::string(e.c_str()) + "\n";
}

}  // namespace kpipe::pipetest
