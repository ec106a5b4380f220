#include "daemon/app/status_page.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>

namespace kpipe::app {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void string(JsonWriter& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// JSON has no infinity: a topic that keeps data forever has no headroom limit (null).
void number(JsonWriter& w, const char* key, double value) {
  w.Key(key);
  if (std::isfinite(value)) {
    w.Double(value);
  } else {
    w.Null();
  }
}

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
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
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string seconds(double value) {
  if (!std::isfinite(value)) return "forever";
  char text[32];
  if (value < 120) {
    snprintf(text, sizeof text, "%.1f s", value);
  } else if (value < 7200) {
    snprintf(text, sizeof text, "%.0f min", value / 60);
  } else {
    snprintf(text, sizeof text, "%.1f h", value / 3600);
  }
  return text;
}

std::string count(double value) {
  char text[32];
  snprintf(text, sizeof text, "%.0f", value);
  return text;
}

}  // namespace

std::string statusJson(const std::vector<pipeline::PipelineStatus>& pipelines,
                       const ConfigStatus& config) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("config");
  w.StartObject();
  string(w, "file", config.file);
  w.Key("loaded_at_ms");
  w.Int64(config.loaded_at_ms);
  w.Key("reloads");
  w.StartObject();
  w.Key("success");
  w.Uint64(config.reloads_succeeded);
  w.Key("failure");
  w.Uint64(config.reloads_failed);
  w.EndObject();
  w.Key("last_reload");
  if (config.last_result.empty()) {
    w.Null();
  } else {
    w.StartObject();
    string(w, "result", config.last_result);
    w.Key("at_ms");
    w.Int64(config.last_at_ms);
    number(w, "seconds", config.last_seconds);
    for (const auto& [key, lines] :
         {std::pair{"errors", &config.last_errors}, {"need_restart", &config.need_restart}}) {
      w.Key(key);
      w.StartArray();
      for (const auto& line : *lines)
        w.String(line.data(), static_cast<rapidjson::SizeType>(line.size()));
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndObject();
  w.Key("pipelines");
  w.StartArray();
  for (const auto& p : pipelines) {
    w.StartObject();
    string(w, "name", p.name);
    string(w, "state", p.state);
    string(w, "status", p.status);
    string(w, "not_ready_because", p.why);
    string(w, "input_topic", p.input_topic);
    string(w, "group", p.group);
    string(w, "output", p.output);
    string(w, "dedup_store", p.store);
    w.Key("messages");
    w.StartObject();
    for (const auto& [key, value] : {std::pair{"ok", p.ok},
                                     {"invalid", p.invalid},
                                     {"duplicate", p.duplicate},
                                     {"error", p.error}}) {
      w.Key(key);
      w.Uint64(static_cast<uint64_t>(value));  // counters: whole numbers
    }
    w.EndObject();
    w.Key("inflight");
    w.Uint64(p.inflight);
    w.Key("blocked");
    w.Uint64(p.blocked);
    number(w, "oldest_blocked_seconds", p.oldest_blocked_seconds);
    string(w, "last_error", p.last_error);
    w.Key("last_error_at_ms");
    w.Int64(p.last_error_at_ms);
    w.Key("partitions");
    w.StartArray();
    for (const auto& part : p.partitions) {
      w.StartObject();
      w.Key("partition");
      w.Int(part.partition);
      string(w, "status", part.status);
      w.Key("committed");
      w.Int64(part.committed);
      w.Key("lag_messages");
      w.Int64(part.lag_messages);
      number(w, "lag_seconds", part.lag_seconds);
      w.Key("retention_headroom_seconds");
      if (part.retention_headroom_seconds && std::isfinite(*part.retention_headroom_seconds)) {
        w.Double(*part.retention_headroom_seconds);
      } else {
        w.Null();  // unknown retention, or kept forever
      }
      w.Key("pending");
      w.Uint64(part.pending);
      w.Key("paused");
      w.Bool(part.paused);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string statusHtml(const std::vector<pipeline::PipelineStatus>& pipelines,
                       const std::string& version, const ConfigStatus& config) {
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
      "content=\"5\"><title>kpipe</title><style>"
      "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0 "
      "1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#eee}"
      "td.l{text-align:left}.ok{color:#070}.warn{color:#a60}.bad{color:#c00;font-weight:bold}"
      "</style></head><body><h1>kpipe " +
      escape(version) +
      "</h1><p><a href=\"/status\">/status</a> (JSON) · <a href=\"/metrics\">/metrics</a> · "
      "<a href=\"/readyz\">/readyz</a></p>";
  if (config.last_result == "failure") {
    html += "<p class=\"bad\">config reload failed; the previous config still runs:</p><ul>";
    for (const auto& line : config.last_errors) html += "<li>" + escape(line) + "</li>";
    html += "</ul>";
  }
  if (!config.need_restart.empty()) {
    html += "<p class=\"warn\">changed, applies at the next restart:";
    for (const auto& setting : config.need_restart) html += " " + escape(setting);
    html += "</p>";
  }
  auto css = [](const std::string& status) {
    return status == "ok" ? "ok" : status == "warn" ? "warn" : "bad";
  };
  for (const auto& p : pipelines) {
    html += "<h2>" + escape(p.name) + " <span class=\"" + css(p.status) + "\">" + escape(p.status) +
            "</span> · " + escape(p.state) + "</h2><p>" + escape(p.input_topic) + " (group " +
            escape(p.group) + ") → " + escape(p.output) +
            (p.store.empty() ? "" : " · dedup store " + escape(p.store)) + "<br>ok " + count(p.ok) +
            " · invalid " + count(p.invalid) + " · duplicate " + count(p.duplicate) + " · error " +
            count(p.error) + " · in flight " + std::to_string(p.inflight) + " · blocked " +
            std::to_string(p.blocked);
    if (p.blocked > 0) html += " (oldest " + seconds(p.oldest_blocked_seconds) + ")";
    if (!p.why.empty()) html += "<br>not ready: " + escape(p.why);
    if (!p.last_error.empty()) html += "<br>last error: " + escape(p.last_error);
    html +=
        "</p><table><tr><th>partition</th><th>status</th><th>committed</th><th>lag</th>"
        "<th>lag (time)</th><th>retention headroom</th><th>pending</th><th>paused</th></tr>";
    for (const auto& part : p.partitions) {
      html += "<tr><td>" + std::to_string(part.partition) + "</td><td class=\"l " +
              css(part.status) + "\">" + escape(part.status) + "</td><td>" +
              std::to_string(part.committed) + "</td><td>" + std::to_string(part.lag_messages) +
              "</td><td>" + seconds(part.lag_seconds) + "</td><td>" +
              (part.retention_headroom_seconds ? seconds(*part.retention_headroom_seconds)
                                               : std::string("unknown")) +
              "</td><td>" + std::to_string(part.pending) + "</td><td>" +
              (part.paused ? "yes" : "no") + "</td></tr>";
    }
    html += "</table>";
  }
  return html + "</body></html>\n";
}

}  // namespace kpipe::app
