#include "rules/template.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "agent/core/text.h"
#include "rules/go_string.h"

namespace dbpulse::rules {

namespace {

struct Pipeline;

// One operand of a command: a variable or field chain, a literal, or (pipeline).
struct Operand {
  enum class Kind { kVariable, kDot, kString, kNumber, kSubPipeline };
  Kind kind = Kind::kString;
  std::string variable;             // "labels", "value", ..., "" for "$"
  std::vector<std::string> fields;  // .a.b after the variable or the dot
  std::string text;
  double number = 0;
  std::shared_ptr<const Pipeline> sub;
};

// A function call (`func` set) or a single operand.
struct Command {
  std::string func;
  std::vector<Operand> args;
};

struct Pipeline {
  std::vector<Command> commands;
};

struct Part {
  bool is_action = false;
  std::string text;  // literal text
  Pipeline pipeline;
};

const char* const kFunctions[] = {"humanize",         "humanize1024", "humanizePercentage",
                                  "humanizeDuration", "printf",       "toUpper",
                                  "toLower",          "title",        "index"};

bool isFunction(const std::string& name) {
  return std::any_of(std::begin(kFunctions), std::end(kFunctions),
                     [&](const char* f) { return name == f; });
}

std::string functionList() {
  std::string out;
  for (const char* f : kFunctions) out += (out.empty() ? "" : " ") + std::string(f);
  return out;
}

struct TemplateError {
  size_t pos;
  std::string message;
};

class ActionParser {
 public:
  // `text` is the action's content between the delimiters; `base` its offset in the template.
  ActionParser(std::string_view text, size_t base) : s_(text), base_(base) {}

  Pipeline parse() {
    Pipeline p = parsePipeline();
    skipSpace();
    if (i_ < s_.size()) fail("unexpected \"" + std::string(s_.substr(i_, 1)) + "\" in action");
    return p;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw TemplateError{base_ + i_, message};
  }

  void skipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }

  bool atEnd() {
    skipSpace();
    return i_ >= s_.size() || s_[i_] == ')' || s_[i_] == '|';
  }

  std::string ident() {
    size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) {
      ++i_;
    }
    return std::string(s_.substr(start, i_ - start));
  }

  std::vector<std::string> fieldChain() {
    std::vector<std::string> fields;
    while (i_ < s_.size() && s_[i_] == '.' && i_ + 1 < s_.size() &&
           (std::isalpha(static_cast<unsigned char>(s_[i_ + 1])) || s_[i_ + 1] == '_')) {
      ++i_;
      fields.push_back(ident());
    }
    return fields;
  }

  Pipeline parsePipeline() {
    if (++depth_ > 16) fail("nested too deeply");
    Pipeline p;
    skipSpace();
    if (i_ < s_.size() && s_[i_] == '$') {
      // "$x := ..." declares a variable: outside the subset.
      size_t save = i_;
      ++i_;
      ident();
      skipSpace();
      if (s_.substr(i_, 2) == ":=" ||
          (i_ < s_.size() && s_[i_] == '=' && s_.substr(i_, 2) != "==")) {
        i_ = save;
        fail("unsupported: declaring variables in templates");
      }
      i_ = save;
    }
    p.commands.push_back(parseCommand());
    while (true) {
      skipSpace();
      if (i_ < s_.size() && s_[i_] == '|') {
        ++i_;
        p.commands.push_back(parseCommand());
        if (p.commands.back().func.empty()) fail("a pipeline stage must be a function");
      } else {
        --depth_;
        return p;
      }
    }
  }

  Command parseCommand() {
    skipSpace();
    Command c;
    if (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) {
      const size_t start = i_;
      std::string name = ident();
      static const char* const kKeywords[] = {"if",    "else",     "end",      "range",
                                              "with",  "define",   "template", "block",
                                              "break", "continue", "nil"};
      if (std::any_of(std::begin(kKeywords), std::end(kKeywords),
                      [&](const char* k) { return name == k; })) {
        i_ = start;
        fail("unsupported: the \"" + name + "\" action (only values, variables and functions)");
      }
      if (name == "true" || name == "false") {
        i_ = start;
        fail("unsupported: boolean constants");
      }
      if (!isFunction(name)) {
        i_ = start;
        fail("unsupported: function \"" + name + "\" (supported: " + functionList() + ")");
      }
      c.func = name;
      while (!atEnd()) c.args.push_back(parseOperand());
      return c;
    }
    if (atEnd()) fail("missing value in action");
    c.args.push_back(parseOperand());
    if (!atEnd()) fail("a value can't be called with arguments");
    return c;
  }

  Operand parseOperand() {
    skipSpace();
    Operand o;
    const char c = s_[i_];
    if (c == '$') {
      const size_t start = i_;
      ++i_;
      o.kind = Operand::Kind::kVariable;
      o.variable = ident();
      static const char* const kVariables[] = {"", "labels", "value", "externalLabels",
                                               "externalURL"};
      if (std::none_of(std::begin(kVariables), std::end(kVariables),
                       [&](const char* v) { return o.variable == v; })) {
        i_ = start;
        fail("undefined variable \"$" + o.variable +
             "\" (defined: $labels $value "
             "$externalLabels $externalURL)");
      }
      o.fields = fieldChain();
    } else if (c == '.') {
      o.kind = Operand::Kind::kDot;
      if (i_ + 1 < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_ + 1]))) {
        o.fields = fieldChain();
      } else {
        ++i_;
      }
    } else if (c == '"' || c == '`') {
      o.kind = Operand::Kind::kString;
      o.text = stringLiteral();
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+') {
      o.kind = Operand::Kind::kNumber;
      const size_t start = i_;
      ++i_;
      while (i_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' ||
              ((s_[i_] == '-' || s_[i_] == '+') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E')))) {
        ++i_;
      }
      std::string num(s_.substr(start, i_ - start));
      char* end = nullptr;
      o.number = std::strtod(num.c_str(), &end);
      if (end != num.c_str() + num.size()) {
        i_ = start;
        fail("bad number syntax: \"" + num + "\"");
      }
    } else if (c == '(') {
      ++i_;
      o.kind = Operand::Kind::kSubPipeline;
      o.sub = std::make_shared<const Pipeline>(parsePipeline());
      skipSpace();
      if (i_ >= s_.size() || s_[i_] != ')') fail("unclosed left paren");
      ++i_;
      o.fields = fieldChain();
    } else {
      fail("unexpected \"" + std::string(1, c) + "\" in operand");
    }
    return o;
  }

  std::string stringLiteral() {
    GoString lit = readGoString(s_, i_);
    if (!lit.ok()) {
      i_ = lit.error_pos;
      fail(lit.error == "unterminated string" ? "unterminated quoted string"
                                              : lit.error + " in string");
    }
    i_ = lit.end;
    return std::move(lit.value);
  }

  std::string_view s_;
  size_t base_;
  size_t i_ = 0;
  int depth_ = 0;
};

// A runtime value.
struct TValue {
  enum class Kind { kNoValue, kString, kNumber, kMap, kRoot };
  Kind kind = Kind::kNoValue;
  std::string text;
  double number = 0;
  const Labels* map = nullptr;
};

struct RuntimeError {
  std::string message;
};

const char* typeName(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kNoValue:
      return "<nil>";
    case TValue::Kind::kString:
      return "string";
    case TValue::Kind::kNumber:
      return "float64";
    case TValue::Kind::kMap:
      return "map[string]string";
    case TValue::Kind::kRoot:
      return "struct";
  }
  return "?";
}

std::string print(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kNoValue:
      return "<no value>";
    case TValue::Kind::kString:
      return v.text;
    case TValue::Kind::kNumber:
      return formatGoFloat(v.number);
    case TValue::Kind::kMap: {
      std::string out = "map[";
      bool first = true;
      if (v.map != nullptr) {
        for (const auto& l : v.map->items()) {
          out += (first ? "" : " ") + l.name + ":" + l.value;
          first = false;
        }
      }
      return out + "]";
    }
    case TValue::Kind::kRoot:
      return "{...}";
  }
  return "";
}

// Go's strconv.ParseFloat on a string operand (Prometheus's convertToFloat).
double toFloat(const TValue& v) {
  if (v.kind == TValue::Kind::kNumber) return v.number;
  if (v.kind == TValue::Kind::kString) {
    const std::string& s = v.text;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && !std::isspace(static_cast<unsigned char>(s[0])) &&
        end == s.c_str() + s.size()) {
      return d;
    }
    throw RuntimeError{"strconv.ParseFloat: parsing \"" + s + "\": invalid syntax"};
  }
  throw RuntimeError{std::string("can't convert ") + typeName(v) + " to float"};
}

const std::string& toText(const TValue& v, const char* func) {
  if (v.kind != TValue::Kind::kString) {
    throw RuntimeError{std::string("wrong type for value in ") + func + "; expected string; got " +
                       typeName(v)};
  }
  return v.text;
}

std::string goSpecial(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

// C's %.4g equals Go's except for the spelling of NaN and infinities.
std::string percent4g(double v) {
  if (!std::isfinite(v)) return goSpecial(v);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string goQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Go's fmt.Sprintf for the verbs templates use (%s %v %q %d %f %F %e %E %g %G %x %%), with
// flags, width and precision; wrong types print like Go ("%!d(string=x)").
std::string goSprintf(const std::string& format, const std::vector<TValue>& args) {
  std::string out;
  size_t arg = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    size_t j = i + 1;
    std::string spec = "%";
    while (j < format.size() &&
           std::string_view("+-# 0").find(format[j]) != std::string_view::npos) {
      spec += format[j++];
    }
    // Width and precision over 1e6 (Go's own limit) are refused: %!(BADWIDTH) / %!(BADPREC),
    // the argument left unused. Passed on to snprintf they made glibc allocate gigabytes
    // ("%.1732719757g", found by the fuzzer).
    size_t width_digits = 0, prec_digits = 0;
    uint64_t width = 0, prec = 0;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) {
      if (++width_digits <= 8) width = width * 10 + static_cast<uint64_t>(format[j] - '0');
      spec += format[j++];
    }
    if (j < format.size() && format[j] == '.') {
      spec += format[j++];
      while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) {
        if (++prec_digits <= 8) prec = prec * 10 + static_cast<uint64_t>(format[j] - '0');
        spec += format[j++];
      }
    }
    if (j >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    if (width_digits > 8 || width > 1'000'000 || prec_digits > 8 || prec > 1'000'000) {
      out += width_digits > 8 || width > 1'000'000 ? "%!(BADWIDTH)" : "%!(BADPREC)";
      i = j;
      continue;
    }
    const char verb = format[j];
    i = j;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (arg >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const TValue& v = args[arg++];
    char buf[512];
    const bool is_num = v.kind == TValue::Kind::kNumber;
    const bool is_str = v.kind == TValue::Kind::kString;
    switch (verb) {
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!is_num) {
          out += std::string("%!") + verb + "(" + typeName(v) + "=" + print(v) + ")";
        } else if (!std::isfinite(v.number)) {
          out += goSpecial(v.number);
        } else {
          std::snprintf(buf, sizeof buf, (spec + (verb == 'F' ? 'f' : verb)).c_str(), v.number);
          out += buf;
        }
        break;
      case 'd':
      case 'x':
        if (is_num || !is_str) {
          out += std::string("%!") + verb + "(" + typeName(v) + "=" + print(v) + ")";
        } else {
          out += std::string("%!") + verb + "(string=" + v.text + ")";
        }
        break;
      case 's':
      case 'v':
        if (is_num && verb == 's') {
          out += "%!s(float64=" + formatGoFloat(v.number) + ")";
        } else {
          std::snprintf(buf, sizeof buf, (spec + 's').c_str(), print(v).c_str());
          out += buf;
        }
        break;
      case 'q':
        out += is_str ? goQuote(v.text) : std::string("%!q(") + typeName(v) + "=" + print(v) + ")";
        break;
      default:
        out += std::string("%!") + verb + "(" + typeName(v) + "=" + print(v) + ")";
    }
  }
  if (arg < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = arg; k < args.size(); ++k) {
      out += (k > arg ? ", " : "") + std::string(typeName(args[k])) + "=" + print(args[k]);
    }
    out += ")";
  }
  return out;
}

class Executor {
 public:
  explicit Executor(const TemplateData& data) : data_(data) {}

  TValue run(const Pipeline& p) {
    TValue v = command(p.commands[0], nullptr);
    for (size_t i = 1; i < p.commands.size(); ++i) v = command(p.commands[i], &v);
    return v;
  }

 private:
  TValue field(const TValue& in, const std::string& name) {
    if (in.kind == TValue::Kind::kRoot) {
      if (name == "Labels") return mapOf(data_.labels);
      if (name == "Value") return number(data_.value);
      if (name == "ExternalLabels") return mapOf(data_.external_labels);
      if (name == "ExternalURL") return text(data_.external_url);
      throw RuntimeError{"can't evaluate field " + name + " in type template.tmplData"};
    }
    if (in.kind == TValue::Kind::kMap) {
      if (in.map != nullptr) {
        for (const auto& l : in.map->items()) {
          if (l.name == name) return text(l.value);
        }
      }
      return TValue{};  // a missing key prints "<no value>", as in Go
    }
    throw RuntimeError{"can't evaluate field " + name + " in type " + typeName(in)};
  }

  static TValue mapOf(const Labels* l) {
    TValue v;
    v.kind = TValue::Kind::kMap;
    v.map = l;
    return v;
  }
  static TValue number(double d) {
    TValue v;
    v.kind = TValue::Kind::kNumber;
    v.number = d;
    return v;
  }
  static TValue text(std::string s) {
    TValue v;
    v.kind = TValue::Kind::kString;
    v.text = std::move(s);
    return v;
  }

  TValue operand(const Operand& o) {
    TValue v;
    switch (o.kind) {
      case Operand::Kind::kString:
        return text(o.text);
      case Operand::Kind::kNumber:
        return number(o.number);
      case Operand::Kind::kSubPipeline:
        v = run(*o.sub);
        break;
      case Operand::Kind::kDot:
        v.kind = TValue::Kind::kRoot;
        break;
      case Operand::Kind::kVariable:
        if (o.variable.empty()) {
          v.kind = TValue::Kind::kRoot;
        } else if (o.variable == "labels") {
          v = mapOf(data_.labels);
        } else if (o.variable == "value") {
          v = number(data_.value);
        } else if (o.variable == "externalLabels") {
          v = mapOf(data_.external_labels);
        } else {
          v = text(data_.external_url);
        }
        break;
    }
    for (const auto& f : o.fields) v = field(v, f);
    return v;
  }

  TValue command(const Command& c, const TValue* piped) {
    if (c.func.empty()) return operand(c.args[0]);
    std::vector<TValue> args;
    for (const auto& a : c.args) args.push_back(operand(a));
    if (piped != nullptr) args.push_back(*piped);
    auto need = [&](size_t n) {
      if (args.size() != n) {
        throw RuntimeError{"wrong number of args for " + c.func + ": want " + std::to_string(n) +
                           " got " + std::to_string(args.size())};
      }
    };
    if (c.func == "index") need(2);
    if (c.func != "index" && c.func != "printf") need(1);
    if (c.func == "humanize") return text(humanize(toFloat(args[0])));
    if (c.func == "humanize1024") return text(humanize1024(toFloat(args[0])));
    if (c.func == "humanizePercentage") return text(humanizePercentage(toFloat(args[0])));
    if (c.func == "humanizeDuration") return text(humanizeDuration(toFloat(args[0])));
    if (c.func == "toUpper" || c.func == "toLower") {
      std::string s = toText(args[0], c.func.c_str());
      for (char& ch : s) {
        ch = static_cast<char>(c.func == "toUpper" ? std::toupper(static_cast<unsigned char>(ch))
                                                   : std::tolower(static_cast<unsigned char>(ch)));
      }
      return text(s);
    }
    if (c.func == "title") {
      std::string s = toText(args[0], "title");
      bool start = true;
      for (char& ch : s) {
        const bool letter = std::isalnum(static_cast<unsigned char>(ch)) != 0;
        if (letter && start) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        start = !letter;
      }
      return text(s);
    }
    if (c.func == "index") {
      if (args[0].kind != TValue::Kind::kMap) {
        throw RuntimeError{std::string("can't index item of type ") + typeName(args[0])};
      }
      const std::string& key = toText(args[1], "index");
      if (args[0].map != nullptr) {
        for (const auto& l : args[0].map->items()) {
          if (l.name == key) return text(l.value);
        }
      }
      return text("");  // index returns the zero value for a missing key
    }
    // printf
    if (args.empty()) throw RuntimeError{"wrong number of args for printf: want at least 1"};
    const std::string& format = toText(args[0], "printf");
    return text(goSprintf(format, std::vector<TValue>(args.begin() + 1, args.end())));
  }

  const TemplateData& data_;
};

}  // namespace

struct Template::Impl {
  std::vector<Part> parts;
  bool constant = true;
};

Template::Template() : impl_(std::make_shared<Impl>()) {}
Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

bool Template::isConstant() const { return impl_->constant; }

Result<Template> Template::parse(std::string_view text) {
  auto impl = std::make_shared<Impl>();
  try {
    size_t i = 0;
    std::string literal;
    while (i < text.size()) {
      size_t open = text.find("{{", i);
      if (open == std::string_view::npos) {
        literal += text.substr(i);
        break;
      }
      literal += text.substr(i, open - i);
      size_t content = open + 2;
      if (text.substr(content, 2) == "- " || text.substr(content, 2) == "-\t" ||
          text.substr(content, 2) == "-\n") {
        while (!literal.empty() && std::isspace(static_cast<unsigned char>(literal.back()))) {
          literal.pop_back();
        }
        content += 1;
      }
      size_t close = text.find("}}", content);
      if (close == std::string_view::npos) throw TemplateError{open, "unclosed action"};
      size_t content_end = close;
      bool trim_after = false;
      if (close >= content + 2 && text[close - 1] == '-' &&
          std::isspace(static_cast<unsigned char>(text[close - 2]))) {
        trim_after = true;
        content_end = close - 1;
      }
      std::string_view action = text.substr(content, content_end - content);
      size_t first = action.find_first_not_of(" \t\n\r");
      if (first != std::string_view::npos && action.substr(first, 2) == "/*") {
        size_t last = action.find_last_not_of(" \t\n\r");
        if (last < first + 3 || action.substr(last - 1, 2) != "*/") {
          throw TemplateError{open, "unclosed comment"};
        }
        // A comment expands to nothing (and may trim around it): the text as written is
        // not the expansion, so the template is not constant.
        impl->constant = false;
      } else {
        if (!literal.empty()) {
          impl->parts.push_back(Part{false, std::move(literal), {}});
          literal.clear();
        }
        Part p;
        p.is_action = true;
        p.pipeline = ActionParser(action, content).parse();
        impl->parts.push_back(std::move(p));
        impl->constant = false;
      }
      i = close + 2;
      if (trim_after) {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      }
    }
    if (!literal.empty()) impl->parts.push_back(Part{false, std::move(literal), {}});
  } catch (const TemplateError& e) {
    auto [line, col] = lineColumn(text, e.pos);
    std::string where = text.find('\n') != std::string_view::npos
                            ? std::to_string(line) + ":" + std::to_string(col)
                            : std::to_string(col);
    return invalidArgument(where + ": " + e.message);
  }
  Template t;
  t.impl_ = std::move(impl);
  return t;
}

Result<std::string> Template::expand(const TemplateData& data) const {
  std::string out;
  try {
    Executor ex(data);
    for (const auto& p : impl_->parts) {
      out += p.is_action ? print(ex.run(p.pipeline)) : p.text;
    }
  } catch (const RuntimeError& e) {
    return invalidArgument(e.message);
  }
  return out;
}

std::string formatGoFloat(double v) {
  if (!std::isfinite(v)) return goSpecial(v);
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  char sci[64];
  auto r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  std::string s(sci, r.ptr);
  const size_t e = s.find('e');
  const int exp = std::atoi(s.c_str() + e + 1);
  if (exp < -4 || exp >= 6) return s;  // to_chars already writes "1.5e+06", as Go does
  char fixed[400];
  r = std::to_chars(fixed, fixed + sizeof fixed, v, std::chars_format::fixed);
  return std::string(fixed, r.ptr);
}

std::string humanize(double v) {
  if (v == 0 || !std::isfinite(v)) return percent4g(v);
  static const char* const kBig[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
  static const char* const kSmall[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : kBig) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
  } else {
    for (const char* p : kSmall) {
      if (std::fabs(v) >= 1) break;
      prefix = p;
      v *= 1000;
    }
  }
  return percent4g(v) + prefix;
}

std::string humanize1024(double v) {
  if (std::fabs(v) <= 1 || !std::isfinite(v)) return percent4g(v);
  static const char* const kUnits[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  std::string prefix;
  for (const char* p : kUnits) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return percent4g(v) + prefix;
}

std::string humanizePercentage(double v) { return percent4g(v * 100) + "%"; }

std::string humanizeDuration(double v) {
  if (!std::isfinite(v)) return percent4g(v);
  if (v == 0) return percent4g(v) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    const auto total = static_cast<int64_t>(v);
    const int64_t seconds = total % 60;
    const int64_t minutes = (total / 60) % 60;
    const int64_t hours = (total / 3600) % 24;
    const int64_t days = total / 86400;
    auto n = [](int64_t x) { return std::to_string(x); };
    if (days != 0)
      return sign + n(days) + "d " + n(hours) + "h " + n(minutes) + "m " + n(seconds) + "s";
    if (hours != 0) return sign + n(hours) + "h " + n(minutes) + "m " + n(seconds) + "s";
    if (minutes != 0) return sign + n(minutes) + "m " + n(seconds) + "s";
    return sign + percent4g(v) + "s";
  }
  static const char* const kSmall[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  for (const char* p : kSmall) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return percent4g(v) + prefix + "s";
}

}  // namespace dbpulse::rules
