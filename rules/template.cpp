#include "rules/template.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <utility>

#include "agent/core/text.h"
#include "rules/go_string.h"

namespace dbpulse::rules {

namespace {

// ---- The parsed template -------------------------------------------------------------

struct Pipeline;

// One operand of a command.
struct Operand {
  enum class Kind { kField, kVariable, kString, kInt, kFloat, kBool, kNil, kFunction, kPipeline };
  Kind kind = Kind::kString;
  std::string name;                 // variable ("labels", "" for "$") or function name
  std::vector<std::string> fields;  // .a.b after the variable, the dot or (pipeline)
  std::string text;
  double number = 0;
  int64_t integer = 0;
  bool boolean = false;
  std::shared_ptr<const Pipeline> sub;
  size_t pos = 0;
};

// A function call (first operand kFunction) or a single value.
struct Command {
  std::vector<Operand> args;
  size_t pos = 0;
};

struct Pipeline {
  std::vector<std::string> decl;  // $x := ... (names without "$"); range may declare two
  bool assign = false;            // $x = ... rather than :=
  std::vector<Command> commands;
  size_t pos = 0;
};

struct Node {
  enum class Kind { kText, kAction, kIf, kRange, kWith, kBreak, kContinue, kTemplate };
  Kind kind = Kind::kText;
  std::string text;  // kText: the text; kTemplate: the template's name
  Pipeline pipe;
  std::vector<Node> list, else_list;
};

struct TemplateError {
  size_t pos;
  std::string message;
};

using Definitions = std::map<std::string, std::vector<Node>>;

// Go's builtins and Prometheus's template functions.
const char* const kFunctions[] = {
    // Go text/template
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "html", "js", "urlquery",
    // Prometheus
    "query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml", "match",
    "title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel", "humanize",
    "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "pathPrefix",
    "externalURL"};

bool isFunction(const std::string& name) {
  return std::any_of(std::begin(kFunctions), std::end(kFunctions),
                     [&](const char* f) { return name == f; });
}

bool isIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Parses one action's text (between the delimiters, trim markers removed).
class ActionParser {
 public:
  ActionParser(std::string_view text, size_t base, std::vector<std::vector<std::string>>& scopes)
      : s_(text), base_(base), scopes_(scopes) {}

  // The first word when it is a keyword (if, else, end, range, with, ...), else "".
  std::string keyword() {
    skipSpace();
    size_t j = i_;
    while (j < s_.size() && isIdentChar(s_[j])) ++j;
    std::string word(s_.substr(i_, j - i_));
    static const char* const kKeywords[] = {"if",     "else",     "end",   "range", "with",
                                            "define", "template", "block", "break", "continue"};
    if (std::none_of(std::begin(kKeywords), std::end(kKeywords),
                     [&](const char* k) { return word == k; })) {
      return "";
    }
    i_ = j;
    return word;
  }

  bool atEndOfAction() {
    skipSpace();
    return i_ >= s_.size();
  }

  // The quoted name after define / template / block.
  std::string templateName(const std::string& kw) {
    skipSpace();
    if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '`')) {
      fail("unexpected \"" + std::string(s_.substr(i_, 1)) + "\" in " + kw + " clause");
    }
    GoString lit = readGoString(s_, i_);
    if (!lit.ok()) {
      i_ = lit.error_pos;
      fail(lit.error);
    }
    i_ = lit.end;
    return lit.value;
  }

  size_t offset() const { return base_ + i_; }

  // A pipeline, maybe with a declaration ($x := / $x = / $i, $e := when `range`).
  Pipeline pipeline(bool range, const char* context) {
    Pipeline p;
    skipSpace();
    p.pos = base_ + i_;
    parseDeclaration(p, range);
    parseCommands(p, context);
    skipSpace();
    if (i_ < s_.size()) fail("unexpected \"" + std::string(s_.substr(i_, 1)) + "\" in " + context);
    for (const auto& d : p.decl) scopes_.back().push_back(d);
    return p;
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw TemplateError{base_ + i_, message};
  }

 private:
  void skipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }

  bool declared(const std::string& name) const {
    for (const auto& scope : scopes_) {
      if (std::find(scope.begin(), scope.end(), name) != scope.end()) return true;
    }
    return false;
  }

  void parseDeclaration(Pipeline& p, bool range) {
    const size_t save = i_;
    std::vector<std::string> names;
    while (i_ < s_.size() && s_[i_] == '$') {
      ++i_;
      const size_t start = i_;
      while (i_ < s_.size() && isIdentChar(s_[i_])) ++i_;
      names.emplace_back(s_.substr(start, i_ - start));
      skipSpace();
      if (range && names.size() == 1 && i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skipSpace();
        continue;
      }
      break;
    }
    if (!names.empty() && s_.substr(i_, 2) == ":=") {
      i_ += 2;
      p.decl = std::move(names);
      return;
    }
    if (names.size() == 1 && i_ < s_.size() && s_[i_] == '=' && s_.substr(i_, 2) != "==") {
      // Go's parser accepts an assignment to an undeclared variable (and declares it);
      // executing it fails.
      ++i_;
      p.decl = std::move(names);
      p.assign = true;
      return;
    }
    if (names.size() > 1) fail("too many declarations in command");
    i_ = save;
  }

  void parseCommands(Pipeline& p, const char* context) {
    if (++depth_ > 16) fail("nested too deeply");
    skipSpace();
    if (i_ >= s_.size() || s_[i_] == ')') fail(std::string("missing value for ") + context);
    p.commands.push_back(command());
    while (true) {
      skipSpace();
      if (i_ < s_.size() && s_[i_] == '|') {
        ++i_;
        skipSpace();
        const size_t at = i_;
        Command c = command();
        if (c.args[0].kind != Operand::Kind::kFunction) {
          i_ = at;
          fail("non executable command in pipeline stage " + std::to_string(p.commands.size() + 1));
        }
        p.commands.push_back(std::move(c));
      } else {
        --depth_;
        return;
      }
    }
  }

  bool atCommandEnd() {
    skipSpace();
    return i_ >= s_.size() || s_[i_] == ')' || s_[i_] == '|';
  }

  Command command() {
    Command c;
    c.pos = base_ + i_;
    if (atCommandEnd()) fail("empty command");
    c.args.push_back(operand());
    while (!atCommandEnd()) {
      if (c.args[0].kind != Operand::Kind::kFunction) {
        fail("can't give argument to non-function " +
             std::string(s_.substr(c.pos - base_, i_ - (c.pos - base_))));
      }
      c.args.push_back(operand());
    }
    return c;
  }

  std::vector<std::string> fieldChain() {
    std::vector<std::string> fields;
    while (i_ < s_.size() && s_[i_] == '.' && i_ + 1 < s_.size() &&
           (std::isalpha(static_cast<unsigned char>(s_[i_ + 1])) || s_[i_ + 1] == '_')) {
      ++i_;
      const size_t start = i_;
      while (i_ < s_.size() && isIdentChar(s_[i_])) ++i_;
      fields.emplace_back(s_.substr(start, i_ - start));
    }
    return fields;
  }

  Operand operand() {
    skipSpace();
    Operand o;
    o.pos = base_ + i_;
    const char c = s_[i_];
    if (c == '$') {
      ++i_;
      const size_t start = i_;
      while (i_ < s_.size() && isIdentChar(s_[i_])) ++i_;
      o.kind = Operand::Kind::kVariable;
      o.name = std::string(s_.substr(start, i_ - start));
      if (!declared(o.name)) {
        i_ = start - 1;
        fail("undefined variable \"$" + o.name + "\"");
      }
      o.fields = fieldChain();
    } else if (c == '.') {
      o.kind = Operand::Kind::kField;
      if (i_ + 1 < s_.size() &&
          (std::isalpha(static_cast<unsigned char>(s_[i_ + 1])) || s_[i_ + 1] == '_')) {
        o.fields = fieldChain();
      } else {
        ++i_;
      }
    } else if (c == '"' || c == '`') {
      o.kind = Operand::Kind::kString;
      GoString lit = readGoString(s_, i_);
      if (!lit.ok()) {
        i_ = lit.error_pos;
        fail(lit.error == "unterminated string" ? "unterminated quoted string"
                                                : lit.error + " in string");
      }
      i_ = lit.end;
      o.text = std::move(lit.value);
    } else if (c == '\'') {
      // A character constant is an int (its code point; ASCII here).
      GoString lit = readGoString(s_, i_);
      if (!lit.ok() || lit.value.size() != 1) fail("malformed character constant");
      i_ = lit.end;
      o.kind = Operand::Kind::kInt;
      o.integer = static_cast<unsigned char>(lit.value[0]);
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') {
      number(o);
    } else if (c == '(') {
      ++i_;
      o.kind = Operand::Kind::kPipeline;
      auto sub = std::make_shared<Pipeline>();
      sub->pos = base_ + i_;
      parseCommands(*sub, "parenthesized pipeline");
      skipSpace();
      if (i_ >= s_.size() || s_[i_] != ')') fail("unclosed left paren");
      ++i_;
      o.sub = std::move(sub);
      o.fields = fieldChain();
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const size_t start = i_;
      while (i_ < s_.size() && isIdentChar(s_[i_])) ++i_;
      o.name = std::string(s_.substr(start, i_ - start));
      if (o.name == "true" || o.name == "false") {
        o.kind = Operand::Kind::kBool;
        o.boolean = o.name == "true";
      } else if (o.name == "nil") {
        o.kind = Operand::Kind::kNil;
      } else if (isFunction(o.name)) {
        o.kind = Operand::Kind::kFunction;
      } else {
        i_ = start;
        fail("function \"" + o.name + "\" not defined");
      }
    } else {
      fail("unexpected \"" + std::string(1, c) + "\" in operand");
    }
    return o;
  }

  void number(Operand& o) {
    const size_t start = i_;
    ++i_;
    while (i_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == '_' ||
            ((s_[i_] == '-' || s_[i_] == '+') &&
             (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E' || s_[i_ - 1] == 'p' || s_[i_ - 1] == 'P')))) {
      ++i_;
    }
    std::string num(s_.substr(start, i_ - start));
    std::erase(num, '_');
    const bool hex = num.find("0x") != std::string::npos || num.find("0X") != std::string::npos;
    const bool is_float = !hex && num.find_first_of(".eE") != std::string::npos;
    char* end = nullptr;
    if (is_float) {
      o.kind = Operand::Kind::kFloat;
      o.number = std::strtod(num.c_str(), &end);
    } else {
      o.kind = Operand::Kind::kInt;
      errno = 0;
      o.integer = std::strtoll(num.c_str(), &end, 0);
      if (errno == ERANGE) end = nullptr;
    }
    if (end == nullptr || end != num.c_str() + num.size() || num == "-" || num == "+" ||
        num == ".") {
      i_ = start;
      fail("bad number syntax: \"" +
           std::string(s_.substr(start, i_ - start).empty() ? num : std::string(s_.substr(start))) +
           "\"");
    }
  }

  std::string_view s_;
  size_t base_;
  std::vector<std::vector<std::string>>& scopes_;
  size_t i_ = 0;
  int depth_ = 0;
};

// Splits the text into text and actions and builds the tree.
class TreeParser {
 public:
  explicit TreeParser(std::string_view text) : text_(text) {
    // Prometheus declares these before every template.
    scopes_.push_back({"", "labels", "externalLabels", "externalURL", "value"});
  }

  std::vector<Node> parse(bool& constant, Definitions& definitions) {
    std::vector<Node> root;
    std::string end_word;
    parseList(root, end_word, 0);
    if (!end_word.empty()) throw TemplateError{last_action_, "unexpected {{" + end_word + "}}"};
    constant = constant_;
    definitions = std::move(definitions_);
    return root;
  }

 private:
  struct Action {
    std::string_view content;
    size_t content_pos;
    size_t open;
  };

  // The next action from i_, adding the text before it to `literal`; false at the end.
  bool nextAction(std::string& literal, Action& a) {
    const size_t open = text_.find("{{", i_);
    if (open == std::string_view::npos) {
      literal += text_.substr(i_);
      i_ = text_.size();
      return false;
    }
    literal += text_.substr(i_, open - i_);
    size_t content = open + 2;
    if (text_.substr(content, 2) == "- " || text_.substr(content, 2) == "-\t" ||
        text_.substr(content, 2) == "-\n" || text_.substr(content, 2) == "-\r") {
      while (!literal.empty() && std::isspace(static_cast<unsigned char>(literal.back()))) {
        literal.pop_back();
      }
      content += 1;
    }
    // The closing delimiter, skipping strings and comments inside the action.
    size_t j = content;
    size_t close = std::string_view::npos;
    while (j < text_.size()) {
      const char c = text_[j];
      if (c == '"' || c == '`' || c == '\'') {
        GoString lit = readGoString(text_, j);
        if (!lit.ok()) break;  // reported by the action parser
        j = lit.end;
        continue;
      }
      if (text_.substr(j, 2) == "/*") {
        const size_t end = text_.find("*/", j + 2);
        if (end == std::string_view::npos) throw TemplateError{open, "unclosed comment"};
        j = end + 2;
        continue;
      }
      if (text_.substr(j, 2) == "}}") {
        close = j;
        break;
      }
      ++j;
    }
    if (close == std::string_view::npos) {
      close = text_.find("}}", content);
      if (close == std::string_view::npos) throw TemplateError{open, "unclosed action"};
    }
    size_t content_end = close;
    bool trim_after = false;
    if (close >= content + 2 && text_[close - 1] == '-' &&
        std::isspace(static_cast<unsigned char>(text_[close - 2]))) {
      trim_after = true;
      content_end = close - 1;
    }
    a.content = text_.substr(content, content_end - content);
    a.content_pos = content;
    a.open = open;
    last_action_ = open;
    constant_ = false;
    i_ = close + 2;
    if (trim_after) {
      while (i_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[i_]))) ++i_;
    }
    return true;
  }

  static void flush(std::vector<Node>& list, std::string& literal) {
    if (literal.empty()) return;
    Node n;
    n.kind = Node::Kind::kText;
    n.text = std::move(literal);
    literal.clear();
    list.push_back(std::move(n));
  }

  // Parses nodes into `list` until {{end}} or {{else ...}} (its keyword goes to `end_word`,
  // for else with the rest of the action left in `else_rest`) or the end of the text.
  void parseList(std::vector<Node>& list, std::string& end_word, int depth) {
    if (depth > 16) throw TemplateError{last_action_, "control structures nested too deeply"};
    std::string literal;
    Action a;
    while (nextAction(literal, a)) {
      flush(list, literal);
      const size_t first = a.content.find_first_not_of(" \t\r\n");
      if (first != std::string_view::npos && a.content.substr(first, 2) == "/*") {
        const size_t last = a.content.find_last_not_of(" \t\r\n");
        if (last < first + 3 || a.content.substr(last - 1, 2) != "*/") {
          throw TemplateError{a.open, "comment ends before closing delimiter"};
        }
        continue;
      }
      ActionParser p(a.content, a.content_pos, scopes_);
      const size_t kw_pos = a.content_pos + (first == std::string_view::npos ? 0 : first);
      const std::string kw = p.keyword();
      if (kw == "end" || kw == "else") {
        if (depth == 0) throw TemplateError{kw_pos, "unexpected {{" + kw + "}}"};
        if (kw == "end" && !p.atEndOfAction()) p.fail("unexpected text in {{end}}");
        end_word = kw;
        else_action_ = a;
        else_parser_offset_ = p.offset() - a.content_pos;
        return;
      }
      if (kw == "define" || kw == "block") {
        if (kw == "define" && depth > 0) throw TemplateError{kw_pos, "unexpected {{define}}"};
        const std::string name = p.templateName(kw);
        Node call;
        call.kind = Node::Kind::kTemplate;
        call.text = name;
        if (kw == "block") {
          call.pipe = p.pipeline(false, "block clause");
        } else if (!p.atEndOfAction()) {
          p.fail("unexpected text in define clause");
        }
        // A named template sees only its own variables ($ is its dot).
        auto saved_scopes = std::exchange(scopes_, {{""}});
        const int saved_range = std::exchange(range_depth_, 0);
        std::vector<Node> body;
        std::string body_end;
        parseList(body, body_end, depth + 1);
        scopes_ = std::move(saved_scopes);
        range_depth_ = saved_range;
        if (body_end != "end") {
          throw TemplateError{kw_pos,
                              "unexpected " +
                                  (body_end.empty() ? std::string("EOF") : "{{" + body_end + "}}") +
                                  " in {{" + kw + "}}"};
        }
        definitions_[name] = std::move(body);
        if (kw == "block") list.push_back(std::move(call));
        continue;
      }
      if (kw == "template") {
        Node call;
        call.kind = Node::Kind::kTemplate;
        call.text = p.templateName(kw);
        if (!p.atEndOfAction()) call.pipe = p.pipeline(false, "template clause");
        list.push_back(std::move(call));
        continue;
      }
      if (kw == "break" || kw == "continue") {
        if (range_depth_ == 0) throw TemplateError{kw_pos, "{{" + kw + "}} outside {{range}}"};
        if (!p.atEndOfAction()) p.fail("unexpected text in {{" + kw + "}}");
        Node n;
        n.kind = kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
        list.push_back(std::move(n));
        continue;
      }
      if (kw.empty()) {
        Node n;
        n.kind = Node::Kind::kAction;
        n.pipe = p.pipeline(false, "command");
        list.push_back(std::move(n));
        continue;
      }
      list.push_back(control(kw, p, kw_pos, depth));
    }
    flush(list, literal);
  }

  // if / range / with: the pipeline, the list, an else branch (or else if / else with).
  Node control(const std::string& kw, ActionParser& p, size_t kw_pos, int depth) {
    Node n;
    n.kind = kw == "if" ? Node::Kind::kIf : kw == "range" ? Node::Kind::kRange : Node::Kind::kWith;
    scopes_.emplace_back();
    n.pipe = p.pipeline(kw == "range", kw.c_str());
    if (kw == "range") ++range_depth_;
    std::string end_word;
    parseList(n.list, end_word, depth + 1);
    if (kw == "range") --range_depth_;
    if (end_word.empty())
      throw TemplateError{kw_pos, "unexpected EOF: missing {{end}} for {{" + kw + "}}"};
    if (end_word == "else") {
      Action a = else_action_;
      ActionParser ep(a.content.substr(else_parser_offset_), a.content_pos + else_parser_offset_,
                      scopes_);
      const std::string next = ep.atEndOfAction() ? "" : ep.keyword();
      if (!next.empty()) {
        // {{else if ...}} / {{else with ...}}: a nested structure sharing our {{end}}.
        if (next != kw || kw == "range") ep.fail("unexpected \"" + next + "\" after {{else}}");
        n.else_list.push_back(control(next, ep, a.content_pos, depth + 1));
        scopes_.pop_back();
        return n;
      }
      if (!ep.atEndOfAction()) ep.fail("unexpected text after {{else}}");
      scopes_.emplace_back();
      parseList(n.else_list, end_word, depth + 1);
      scopes_.pop_back();
      if (end_word != "end") {
        throw TemplateError{kw_pos, end_word.empty()
                                        ? "unexpected EOF: missing {{end}} for {{" + kw + "}}"
                                        : "expected {{end}}, found {{else}}"};
      }
    }
    scopes_.pop_back();
    return n;
  }

  std::string_view text_;
  size_t i_ = 0;
  size_t last_action_ = 0;
  bool constant_ = true;
  int range_depth_ = 0;
  Action else_action_{};
  size_t else_parser_offset_ = 0;
  std::vector<std::vector<std::string>> scopes_;
  Definitions definitions_;
};

// ---- Values and execution ------------------------------------------------------------

// A runtime value: Go's types as Prometheus's templates see them.
struct TValue {
  enum class Kind { kNil, kString, kFloat, kInt, kBool, kMap, kRoot, kSample, kSamples, kArgs };
  Kind kind = Kind::kNil;
  std::string text;
  double number = 0;
  int64_t integer = 0;
  bool boolean = false;
  const Labels* map = nullptr;                                              // kMap
  std::shared_ptr<const Labels> owned_map;                                  // keeps `map` alive
  std::shared_ptr<const std::vector<QuerySample>> samples;                  // kSamples, kSample
  size_t index = 0;                                                         // kSample: which one
  std::shared_ptr<const std::vector<std::pair<std::string, TValue>>> args;  // kArgs
};

struct RuntimeError {
  std::string message;
};

const char* typeName(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kNil:
      return "<nil>";
    case TValue::Kind::kString:
      return "string";
    case TValue::Kind::kFloat:
      return "float64";
    case TValue::Kind::kInt:
      return "int";
    case TValue::Kind::kBool:
      return "bool";
    case TValue::Kind::kMap:
      return "map[string]string";
    case TValue::Kind::kRoot:
      return "template.tmplData";
    case TValue::Kind::kSample:
      return "*template.sample";
    case TValue::Kind::kSamples:
      return "template.queryResult";
    case TValue::Kind::kArgs:
      return "map[string]interface {}";
  }
  return "?";
}

std::string print(const TValue& v);

std::string printMap(const Labels* m) {
  std::string out = "map[";
  bool first = true;
  if (m != nullptr) {
    for (const auto& l : m->items()) {
      out += (first ? "" : " ") + l.name + ":" + l.value;
      first = false;
    }
  }
  return out + "]";
}

// Go's fmt %v of the value (what {{ }} prints).
std::string print(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kNil:
      return "<no value>";
    case TValue::Kind::kString:
      return v.text;
    case TValue::Kind::kFloat:
      return formatGoFloat(v.number);
    case TValue::Kind::kInt:
      return std::to_string(v.integer);
    case TValue::Kind::kBool:
      return v.boolean ? "true" : "false";
    case TValue::Kind::kMap:
      return printMap(v.map);
    case TValue::Kind::kRoot:
      return "{...}";
    case TValue::Kind::kSample: {
      const QuerySample& s = (*v.samples)[v.index];
      return "{" + printMap(&s.labels) + " " + formatGoFloat(s.value) + "}";
    }
    case TValue::Kind::kSamples: {
      std::string out = "[";
      for (size_t i = 0; i < v.samples->size(); ++i) {
        const QuerySample& s = (*v.samples)[i];
        out += std::string(i ? " " : "") + "{" + printMap(&s.labels) + " " +
               formatGoFloat(s.value) + "}";
      }
      return out + "]";
    }
    case TValue::Kind::kArgs: {
      std::string out = "map[";
      for (size_t i = 0; i < v.args->size(); ++i) {
        out += (i ? " " : "") + (*v.args)[i].first + ":" + print((*v.args)[i].second);
      }
      return out + "]";
    }
  }
  return "";
}

// Go's template truth: false, 0, "", empty maps and slices and nil are false.
bool truth(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kNil:
      return false;
    case TValue::Kind::kString:
      return !v.text.empty();
    case TValue::Kind::kFloat:
      return v.number != 0;
    case TValue::Kind::kInt:
      return v.integer != 0;
    case TValue::Kind::kBool:
      return v.boolean;
    case TValue::Kind::kMap:
      return v.map != nullptr && !v.map->empty();
    case TValue::Kind::kSamples:
      return !v.samples->empty();
    case TValue::Kind::kArgs:
      return !v.args->empty();
    default:
      return true;
  }
}

// Prometheus's convertToFloat.
double toFloat(const TValue& v) {
  if (v.kind == TValue::Kind::kFloat) return v.number;
  if (v.kind == TValue::Kind::kInt) return static_cast<double>(v.integer);
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
    const bool is_num = v.kind == TValue::Kind::kFloat;
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
        if (v.kind == TValue::Kind::kInt) {
          std::snprintf(buf, sizeof buf, (spec + (verb == 'd' ? "lld" : "llx")).c_str(),
                        static_cast<long long>(v.integer));
          out += buf;
        } else if (is_num || !is_str) {
          out += std::string("%!") + verb + "(" + typeName(v) + "=" + print(v) + ")";
        } else {
          out += std::string("%!") + verb + "(string=" + v.text + ")";
        }
        break;
      case 's':
      case 'v':
        if ((is_num || v.kind == TValue::Kind::kInt || v.kind == TValue::Kind::kBool) &&
            verb == 's') {
          out += std::string("%!s(") + typeName(v) + "=" + print(v) + ")";
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

TValue textValue(std::string s) {
  TValue v;
  v.kind = TValue::Kind::kString;
  v.text = std::move(s);
  return v;
}
TValue floatValue(double d) {
  TValue v;
  v.kind = TValue::Kind::kFloat;
  v.number = d;
  return v;
}
TValue intValue(int64_t i) {
  TValue v;
  v.kind = TValue::Kind::kInt;
  v.integer = i;
  return v;
}
TValue boolValue(bool b) {
  TValue v;
  v.kind = TValue::Kind::kBool;
  v.boolean = b;
  return v;
}
TValue mapValue(const Labels* l) {
  TValue v;
  v.kind = TValue::Kind::kMap;
  v.map = l;
  return v;
}

// Go's fmt.Sprint: a space between operands when neither is a string.
std::string goSprint(const std::vector<TValue>& args, bool always_space) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && (always_space || (args[i].kind != TValue::Kind::kString &&
                                   args[i - 1].kind != TValue::Kind::kString))) {
      out += ' ';
    }
    out += print(args[i]);
  }
  return out;
}

std::string htmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\0':
        out += "\uFFFD";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string jsEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      case '"':
        out += "\\\"";
        break;
      case '<':
        out += "\\u003C";
        break;
      case '>':
        out += "\\u003E";
        break;
      case '&':
        out += "\\u0026";
        break;
      case '=':
        out += "\\u003D";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// Go's url.QueryEscape.
std::string queryEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Go's time.Time.String() of a UTC time with millisecond precision (humanizeTimestamp).
std::string formatUtcTime(int64_t ms) {
  int64_t secs = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out = buf;
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + " +0000 UTC";
}

// Go's basic kinds for eq/lt & co.
enum class BasicKind { kBool, kInt, kFloat, kString, kOther };
BasicKind basicKind(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kBool:
      return BasicKind::kBool;
    case TValue::Kind::kInt:
      return BasicKind::kInt;
    case TValue::Kind::kFloat:
      return BasicKind::kFloat;
    case TValue::Kind::kString:
      return BasicKind::kString;
    default:
      return BasicKind::kOther;
  }
}

bool goEqual(const TValue& a, const TValue& b) {
  const BasicKind ka = basicKind(a), kb = basicKind(b);
  if (ka == BasicKind::kOther || kb == BasicKind::kOther) {
    if (a.kind == TValue::Kind::kNil && b.kind == TValue::Kind::kNil) return true;
    throw RuntimeError{"error calling eq: invalid type for comparison"};
  }
  if (ka != kb) throw RuntimeError{"error calling eq: incompatible types for comparison"};
  switch (ka) {
    case BasicKind::kBool:
      return a.boolean == b.boolean;
    case BasicKind::kInt:
      return a.integer == b.integer;
    case BasicKind::kFloat:
      return a.number == b.number;
    default:
      return a.text == b.text;
  }
}

bool goLess(const TValue& a, const TValue& b, const char* func) {
  const BasicKind ka = basicKind(a), kb = basicKind(b);
  if (ka == BasicKind::kOther || kb == BasicKind::kOther || ka == BasicKind::kBool ||
      kb == BasicKind::kBool) {
    throw RuntimeError{std::string("error calling ") + func + ": invalid type for comparison"};
  }
  if (ka != kb) {
    throw RuntimeError{std::string("error calling ") + func +
                       ": incompatible types for comparison"};
  }
  switch (ka) {
    case BasicKind::kInt:
      return a.integer < b.integer;
    case BasicKind::kFloat:
      return a.number < b.number;
    default:
      return a.text < b.text;
  }
}

struct BreakSignal {};
struct ContinueSignal {};

constexpr size_t kMaxOutput = 1 << 20;  // a runaway range must not eat the heap

class Executor {
 public:
  Executor(const TemplateData& data, const Definitions& definitions)
      : data_(data), definitions_(definitions) {
    TValue root;
    root.kind = TValue::Kind::kRoot;
    vars_.push_back({{"", root},
                     {"labels", mapValue(data.labels)},
                     {"externalLabels", mapValue(data.external_labels)},
                     {"externalURL", textValue(data.external_url)},
                     {"value", floatValue(data.value)}});
    dot_ = root;
  }

  void run(const std::vector<Node>& list, std::string& out) {
    for (const auto& n : list) {
      switch (n.kind) {
        case Node::Kind::kText:
          out += n.text;
          break;
        case Node::Kind::kAction: {
          TValue v = pipeline(n.pipe);
          if (n.pipe.decl.empty()) out += print(v);
          break;
        }
        case Node::Kind::kIf:
        case Node::Kind::kWith: {
          // Variables declared in the pipeline live until {{end}}, else branch included.
          vars_.emplace_back();
          TValue v = pipeline(n.pipe);
          if (truth(v)) {
            TValue saved = dot_;
            if (n.kind == Node::Kind::kWith) dot_ = v;
            run(n.list, out);
            dot_ = saved;
          } else {
            run(n.else_list, out);
          }
          vars_.pop_back();
          break;
        }
        case Node::Kind::kRange:
          range(n, out);
          break;
        case Node::Kind::kTemplate:
          callTemplate(n, out);
          break;
        case Node::Kind::kBreak:
          throw BreakSignal{};
        case Node::Kind::kContinue:
          throw ContinueSignal{};
      }
      if (out.size() > kMaxOutput) throw RuntimeError{"template output exceeds 1 MiB"};
    }
  }

 private:
  // {{template "name" pipeline}}: the named template with that dot and fresh variables.
  void callTemplate(const Node& n, std::string& out) {
    auto it = definitions_.find(n.text);
    if (it == definitions_.end()) throw RuntimeError{"no such template \"" + n.text + "\""};
    if (++template_depth_ > 100) throw RuntimeError{"exceeded maximum template depth (100)"};
    TValue v;
    if (!n.pipe.commands.empty()) v = pipeline(n.pipe);
    auto saved_vars = std::exchange(vars_, {{{"", v}}});
    TValue saved_dot = std::exchange(dot_, v);
    run(it->second, out);
    vars_ = std::move(saved_vars);
    dot_ = std::move(saved_dot);
    --template_depth_;
  }

  void range(const Node& n, std::string& out) {
    vars_.emplace_back();
    TValue v = pipeline(n.pipe, /*declare=*/false);
    std::vector<std::pair<TValue, TValue>> items;  // key/index, element
    switch (v.kind) {
      case TValue::Kind::kMap:
        if (v.map != nullptr) {
          for (const auto& l : v.map->items())
            items.emplace_back(textValue(l.name), textValue(l.value));
        }
        break;
      case TValue::Kind::kSamples:
        for (size_t i = 0; i < v.samples->size(); ++i) {
          TValue s;
          s.kind = TValue::Kind::kSample;
          s.samples = v.samples;
          s.index = i;
          items.emplace_back(intValue(static_cast<int64_t>(i)), s);
        }
        break;
      case TValue::Kind::kArgs:
        for (const auto& [k, x] : *v.args) items.emplace_back(textValue(k), x);
        break;
      case TValue::Kind::kNil:
        break;
      default:
        throw RuntimeError{std::string("range can't iterate over ") + print(v)};
    }
    const TValue saved = dot_;
    for (const auto& [key, elem] : items) {
      vars_.emplace_back();
      if (n.pipe.decl.size() == 1) setVar(n.pipe.decl[0], elem, false);
      if (n.pipe.decl.size() == 2) {
        setVar(n.pipe.decl[0], key, false);
        setVar(n.pipe.decl[1], elem, false);
      }
      dot_ = elem;
      bool stop = false;
      try {
        run(n.list, out);
      } catch (const BreakSignal&) {
        stop = true;
      } catch (const ContinueSignal&) {
      }
      vars_.pop_back();
      if (stop) break;
    }
    dot_ = saved;
    vars_.pop_back();
    if (items.empty()) {
      vars_.emplace_back();
      run(n.else_list, out);
      vars_.pop_back();
    }
  }

  void setVar(const std::string& name, const TValue& v, bool assign) {
    if (assign) {
      for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
        for (auto& [k, x] : *it) {
          if (k == name) {
            x = v;
            return;
          }
        }
      }
      throw RuntimeError{"undefined variable: $" + name};
    }
    vars_.back().emplace_back(name, v);
  }

  const TValue& variable(const std::string& name) const {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      for (auto jt = it->rbegin(); jt != it->rend(); ++jt) {
        if (jt->first == name) return jt->second;
      }
    }
    throw RuntimeError{"undefined variable: $" + name};
  }

  TValue pipeline(const Pipeline& p, bool declare = true) {
    TValue v = command(p.commands[0], nullptr);
    for (size_t i = 1; i < p.commands.size(); ++i) v = command(p.commands[i], &v);
    if (declare && !p.decl.empty()) setVar(p.decl[0], v, p.assign);
    return v;
  }

  TValue field(const TValue& in, const std::string& name) {
    switch (in.kind) {
      case TValue::Kind::kRoot:
        if (name == "Labels") return mapValue(data_.labels);
        if (name == "Value") return floatValue(data_.value);
        if (name == "ExternalLabels") return mapValue(data_.external_labels);
        if (name == "ExternalURL") return textValue(data_.external_url);
        break;
      case TValue::Kind::kMap:
        // missingkey=zero, as Prometheus sets it: a missing label is "".
        return textValue(in.map != nullptr ? std::string(in.map->get(name)) : "");
      case TValue::Kind::kSample: {
        const QuerySample& s = (*in.samples)[in.index];
        if (name == "Labels") {
          TValue m = mapValue(&s.labels);
          m.samples = in.samples;  // keeps the labels alive
          return m;
        }
        if (name == "Value") return floatValue(s.value);
        break;
      }
      case TValue::Kind::kArgs:
        for (const auto& [k, x] : *in.args) {
          if (k == name) return x;
        }
        return TValue{};
      case TValue::Kind::kNil:
        throw RuntimeError{"nil pointer evaluating " + std::string(typeName(in)) + "." + name};
      default:
        break;
    }
    throw RuntimeError{"can't evaluate field " + name + " in type " + typeName(in)};
  }

  TValue operand(const Operand& o) {
    TValue v;
    switch (o.kind) {
      case Operand::Kind::kString:
        return textValue(o.text);
      case Operand::Kind::kInt:
        return intValue(o.integer);
      case Operand::Kind::kFloat:
        return floatValue(o.number);
      case Operand::Kind::kBool:
        return boolValue(o.boolean);
      case Operand::Kind::kNil:
        return v;
      case Operand::Kind::kPipeline:
        v = pipeline(*o.sub);
        break;
      case Operand::Kind::kField:
        v = dot_;
        break;
      case Operand::Kind::kVariable:
        v = variable(o.name);
        break;
      case Operand::Kind::kFunction:
        return call(o.name, {}, o);
    }
    for (const auto& f : o.fields) v = field(v, f);
    return v;
  }

  TValue command(const Command& c, const TValue* piped) {
    const Operand& head = c.args[0];
    if (head.kind != Operand::Kind::kFunction) {
      if (piped != nullptr) throw RuntimeError{"can't give argument to non-function"};
      return operand(head);
    }
    // and/or evaluate their arguments lazily.
    if (head.name == "and" || head.name == "or") {
      const size_t n = c.args.size() - 1 + (piped ? 1 : 0);
      if (n == 0)
        throw RuntimeError{"wrong number of args for " + head.name + ": want at least 1 got 0"};
      TValue v;
      for (size_t i = 1; i <= n; ++i) {
        v = i < c.args.size() ? operand(c.args[i]) : *piped;
        if (truth(v) == (head.name == "or")) return v;
      }
      return v;
    }
    std::vector<TValue> args;
    for (size_t i = 1; i < c.args.size(); ++i) args.push_back(operand(c.args[i]));
    if (piped != nullptr) args.push_back(*piped);
    return call(head.name, std::move(args), head);
  }

  TValue sample(const TValue& v, const char* func) {
    if (v.kind != TValue::Kind::kSample) {
      throw RuntimeError{std::string("wrong type for value in ") + func +
                         "; expected *template.sample; got " + typeName(v)};
    }
    return v;
  }

  TValue call(const std::string& f, std::vector<TValue> args, const Operand&) {
    auto need = [&](size_t n) {
      if (args.size() != n) {
        throw RuntimeError{"wrong number of args for " + f + ": want " + std::to_string(n) +
                           " got " + std::to_string(args.size())};
      }
    };
    auto at_least = [&](size_t n) {
      if (args.size() < n) {
        throw RuntimeError{"wrong number of args for " + f + ": want at least " +
                           std::to_string(n) + " got " + std::to_string(args.size())};
      }
    };
    if (f == "not") {
      need(1);
      return boolValue(!truth(args[0]));
    }
    if (f == "len") {
      need(1);
      const TValue& v = args[0];
      if (v.kind == TValue::Kind::kString) return intValue(static_cast<int64_t>(v.text.size()));
      if (v.kind == TValue::Kind::kMap) {
        return intValue(v.map ? static_cast<int64_t>(v.map->size()) : 0);
      }
      if (v.kind == TValue::Kind::kSamples)
        return intValue(static_cast<int64_t>(v.samples->size()));
      if (v.kind == TValue::Kind::kArgs) return intValue(static_cast<int64_t>(v.args->size()));
      throw RuntimeError{std::string("error calling len: len of type ") + typeName(v)};
    }
    if (f == "index") {
      at_least(1);
      TValue v = args[0];
      for (size_t i = 1; i < args.size(); ++i) {
        if (v.kind == TValue::Kind::kMap) {
          v = textValue(v.map ? std::string(v.map->get(toText(args[i], "index"))) : "");
        } else if (v.kind == TValue::Kind::kSamples && args[i].kind == TValue::Kind::kInt) {
          if (args[i].integer < 0 || static_cast<size_t>(args[i].integer) >= v.samples->size()) {
            throw RuntimeError{"error calling index: index out of range: " +
                               std::to_string(args[i].integer)};
          }
          TValue s;
          s.kind = TValue::Kind::kSample;
          s.samples = v.samples;
          s.index = static_cast<size_t>(args[i].integer);
          v = s;
        } else {
          throw RuntimeError{std::string("error calling index: can't index item of type ") +
                             typeName(v)};
        }
      }
      return v;
    }
    if (f == "print") return textValue(goSprint(args, false));
    if (f == "println") return textValue(goSprint(args, true) + "\n");
    if (f == "printf") {
      at_least(1);
      const std::string& format = toText(args[0], "printf");
      return textValue(goSprintf(format, std::vector<TValue>(args.begin() + 1, args.end())));
    }
    if (f == "eq") {
      at_least(2);
      for (size_t i = 1; i < args.size(); ++i) {
        if (goEqual(args[0], args[i])) return boolValue(true);
      }
      return boolValue(false);
    }
    if (f == "ne") {
      need(2);
      return boolValue(!goEqual(args[0], args[1]));
    }
    if (f == "lt" || f == "le" || f == "gt" || f == "ge") {
      need(2);
      const char* fn = f.c_str();
      if (f == "lt") return boolValue(goLess(args[0], args[1], fn));
      if (f == "ge") return boolValue(!goLess(args[0], args[1], fn));
      const bool greater = goLess(args[1], args[0], fn);
      return boolValue(f == "gt" ? greater : !greater);
    }
    if (f == "html") return textValue(htmlEscape(goSprint(args, false)));
    if (f == "js") return textValue(jsEscape(goSprint(args, false)));
    if (f == "urlquery") return textValue(queryEscape(goSprint(args, false)));
    if (f == "query") {
      need(1);
      const std::string& q = toText(args[0], "query");
      if (!data_.query) throw RuntimeError{"error calling query: queries are not available here"};
      auto r = data_.query(q);
      if (!r.ok()) throw RuntimeError{"error calling query: " + r.status().message()};
      TValue v;
      v.kind = TValue::Kind::kSamples;
      v.samples = std::make_shared<const std::vector<QuerySample>>(std::move(*r));
      return v;
    }
    if (f == "first") {
      need(1);
      if (args[0].kind != TValue::Kind::kSamples) {
        throw RuntimeError{
            std::string("wrong type for value in first; expected template.queryResult; got ") +
            typeName(args[0])};
      }
      if (args[0].samples->empty()) {
        throw RuntimeError{"error calling first: first() called on vector with no elements"};
      }
      TValue s;
      s.kind = TValue::Kind::kSample;
      s.samples = args[0].samples;
      s.index = 0;
      return s;
    }
    if (f == "label") {
      need(2);
      const std::string& name = toText(args[0], "label");
      const TValue s = sample(args[1], "label");
      return textValue(std::string((*s.samples)[s.index].labels.get(name)));
    }
    if (f == "value") {
      need(1);
      const TValue s = sample(args[0], "value");
      return floatValue((*s.samples)[s.index].value);
    }
    if (f == "strvalue") {
      need(1);
      const TValue s = sample(args[0], "strvalue");
      return textValue(std::string((*s.samples)[s.index].labels.get("__value__")));
    }
    if (f == "sortByLabel") {
      need(2);
      const std::string& name = toText(args[0], "sortByLabel");
      if (args[1].kind != TValue::Kind::kSamples) {
        throw RuntimeError{"wrong type for value in sortByLabel; expected template.queryResult"};
      }
      auto sorted = std::make_shared<std::vector<QuerySample>>(*args[1].samples);
      std::stable_sort(sorted->begin(), sorted->end(),
                       [&](const QuerySample& a, const QuerySample& b) {
                         return a.labels.get(name) < b.labels.get(name);
                       });
      TValue v;
      v.kind = TValue::Kind::kSamples;
      v.samples = std::move(sorted);
      return v;
    }
    if (f == "args") {
      auto list = std::make_shared<std::vector<std::pair<std::string, TValue>>>();
      for (size_t i = 0; i < args.size(); ++i)
        list->emplace_back("arg" + std::to_string(i), args[i]);
      TValue v;
      v.kind = TValue::Kind::kArgs;
      v.args = std::move(list);
      return v;
    }
    if (f == "reReplaceAll" || f == "match") {
      need(f == "match" ? 2 : 3);
      const std::string& pattern = toText(args[0], f.c_str());
      re2::RE2::Options options;
      options.set_log_errors(false);
      re2::RE2 re(pattern, options);
      if (!re.ok()) throw RuntimeError{"error calling " + f + ": " + re.error()};
      if (f == "match") {
        return boolValue(re2::RE2::PartialMatch(toText(args[1], "match"), re));
      }
      return textValue(
          replaceAll(re, toText(args[2], "reReplaceAll"), toText(args[1], "reReplaceAll")));
    }
    if (f == "safeHtml") {
      need(1);
      return textValue(toText(args[0], "safeHtml"));
    }
    if (f == "toUpper" || f == "toLower") {
      need(1);
      std::string s = toText(args[0], f.c_str());
      for (char& ch : s) {
        ch = static_cast<char>(f == "toUpper" ? std::toupper(static_cast<unsigned char>(ch))
                                              : std::tolower(static_cast<unsigned char>(ch)));
      }
      return textValue(s);
    }
    if (f == "title") {
      need(1);
      std::string s = toText(args[0], "title");
      bool start = true;
      for (char& ch : s) {
        const bool letter = std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_' ||
                            (static_cast<unsigned char>(ch) & 0x80) != 0;
        if (letter && start) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        start = !letter;
      }
      return textValue(s);
    }
    if (f == "graphLink" || f == "tableLink") {
      need(1);
      return textValue("/graph?g0.expr=" + queryEscape(toText(args[0], f.c_str())) +
                       (f == "graphLink" ? "&g0.tab=0" : "&g0.tab=1"));
    }
    if (f == "pathPrefix" || f == "externalURL") {
      need(0);
      if (f == "externalURL") return textValue(data_.external_url);
      // The path of the external URL.
      const std::string& u = data_.external_url;
      const size_t scheme = u.find("://");
      const size_t path = u.find('/', scheme == std::string::npos ? 0 : scheme + 3);
      return textValue(path == std::string::npos ? "" : u.substr(path));
    }
    need(1);
    const double v = toFloat(args[0]);
    if (f == "humanize") return textValue(humanize(v));
    if (f == "humanize1024") return textValue(humanize1024(v));
    if (f == "humanizePercentage") return textValue(humanizePercentage(v));
    if (f == "humanizeDuration") return textValue(humanizeDuration(v));
    // humanizeTimestamp
    if (!std::isfinite(v)) return textValue(percent4g(v));
    const double ns = v * 1e9;
    if (!(ns > -9.2233720368547758e18 && ns < 9.2233720368547758e18)) {
      throw RuntimeError{"error calling humanizeTimestamp: " + formatGoFloat(v) +
                         " cannot be represented as a nanoseconds timestamp since it overflows "
                         "int64"};
    }
    return textValue(formatUtcTime(static_cast<int64_t>(ns) / 1'000'000));
  }

  // Go's Regexp.ReplaceAllString: every leftmost non-overlapping match, with $1/${name}
  // expansion in `repl`.
  static std::string replaceAll(const re2::RE2& re, const std::string& text,
                                const std::string& repl) {
    const int ngroups = re.NumberOfCapturingGroups() + 1;
    std::vector<re2::StringPiece> groups(static_cast<size_t>(ngroups));
    std::string out;
    size_t pos = 0;
    size_t last_match_end = std::string::npos;
    while (pos <= text.size()) {
      if (!re.Match(text, pos, text.size(), re2::RE2::UNANCHORED, groups.data(), ngroups)) break;
      const size_t start = static_cast<size_t>(groups[0].data() - text.data());
      const size_t end = start + groups[0].size();
      if (groups[0].empty() && start == last_match_end) {
        // An empty match right after the previous match is skipped, as in Go.
        if (start >= text.size()) break;
        out += text[start];
        pos = start + 1;
        continue;
      }
      out.append(text, pos, start - pos);
      std::vector<std::string_view> parts;
      for (const auto& g : groups) parts.emplace_back(g.data(), g.size());
      out += expandGoTemplate(re, repl, parts);
      last_match_end = end;
      if (end == start) {
        if (start < text.size()) out += text[start];
        pos = start + 1;
      } else {
        pos = end;
      }
    }
    if (pos < text.size()) out.append(text, pos, std::string::npos);
    return out;
  }

  const TemplateData& data_;
  const Definitions& definitions_;
  std::vector<std::vector<std::pair<std::string, TValue>>> vars_;
  TValue dot_;
  int template_depth_ = 0;
};

}  // namespace

struct Template::Impl {
  std::vector<Node> root;
  Definitions definitions;  // {{define}} and {{block}}
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
    TreeParser p(text);
    impl->root = p.parse(impl->constant, impl->definitions);
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
    Executor ex(data, impl_->definitions);
    ex.run(impl_->root, out);
  } catch (const RuntimeError& e) {
    return invalidArgument(e.message);
  } catch (const BreakSignal&) {
    return internalError("{{break}} outside {{range}}");
  } catch (const ContinueSignal&) {
    return internalError("{{continue}} outside {{range}}");
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
