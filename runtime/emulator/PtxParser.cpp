//===- PtxParser.cpp - PTX text to emulator instructions ------------------===//
//
// PTX statements end with ';' except labels, scope braces and function
// headers; LLVM's output is regular enough that a statement splitter and an
// operand parser cover it. Names resolve while parsing (function scope
// first, then module scope); branch labels once the body is complete.
//
//===----------------------------------------------------------------------===//

#include "Ptx.h"

#include <array>
#include <cctype>
#include <charconv>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

using namespace hybrid::emu;

namespace {

/// Sets `field` to `names[name]` if `name` is one of them.
template <typename T>
bool assignNamed(const std::unordered_map<std::string_view, T> &names,
                 std::string_view name, T &field) {
  auto it = names.find(name);
  if (it == names.end())
    return false;
  field = it->second;
  return true;
}

const std::unordered_map<std::string_view, Type> kTypes = {
    {"pred", Type::Pred}, {"b8", Type::B8},         {"b16", Type::B16},
    {"b32", Type::B32},   {"b64", Type::B64},       {"u8", Type::U8},
    {"u16", Type::U16},   {"u32", Type::U32},       {"u64", Type::U64},
    {"s8", Type::S8},     {"s16", Type::S16},       {"s32", Type::S32},
    {"s64", Type::S64},   {"f16", Type::F16},       {"f16x2", Type::F16x2},
    {"bf16", Type::BF16}, {"bf16x2", Type::BF16x2}, {"f32", Type::F32},
    {"f64", Type::F64}};

const std::unordered_map<std::string_view, Opcode> kOpcodes = {
    {"add", Opcode::Add},
    {"sub", Opcode::Sub},
    {"mul", Opcode::Mul},
    {"mad", Opcode::Mad},
    {"fma", Opcode::Fma},
    {"div", Opcode::Div},
    {"rem", Opcode::Rem},
    {"min", Opcode::Min},
    {"max", Opcode::Max},
    {"neg", Opcode::Neg},
    {"abs", Opcode::Abs},
    {"not", Opcode::Not},
    {"and", Opcode::And},
    {"or", Opcode::Or},
    {"xor", Opcode::Xor},
    {"shl", Opcode::Shl},
    {"shr", Opcode::Shr},
    {"bfe", Opcode::Bfe},
    {"clz", Opcode::Clz},
    {"shf", Opcode::Shf},
    {"copysign", Opcode::Copysign},
    {"rcp", Opcode::Rcp},
    {"ex2", Opcode::Ex2},
    {"sin", Opcode::Sin},
    {"cos", Opcode::Cos},
    {"sqrt", Opcode::Sqrt},
    {"setp", Opcode::Setp},
    {"selp", Opcode::Selp},
    {"cvt", Opcode::Cvt},
    {"cvta", Opcode::Cvta},
    {"mov", Opcode::Mov},
    {"ld", Opcode::Ld},
    {"st", Opcode::St},
    {"bra", Opcode::Bra},
    {"ret", Opcode::Ret},
    {"exit", Opcode::Exit},
    {"call", Opcode::Call},
    {"bar", Opcode::Bar},
    {"barrier", Opcode::Bar},
    {"shfl", Opcode::Shfl},
    {"vote", Opcode::Vote},
    {"ldmatrix", Opcode::Ldmatrix},
    {"mma", Opcode::Mma},
    {"cp", Opcode::CpAsync},
    {"addc", Opcode::Addc},
    {"subc", Opcode::Subc},
    {"madc", Opcode::Madc}};

const std::unordered_map<std::string_view, Compare> kCompares = {
    {"eq", Compare::Eq},   {"ne", Compare::Ne},   {"lt", Compare::Lt},
    {"le", Compare::Le},   {"gt", Compare::Gt},   {"ge", Compare::Ge},
    {"lo", Compare::Lo},   {"ls", Compare::Ls},   {"hi", Compare::Hi},
    {"hs", Compare::Hs},   {"equ", Compare::Equ}, {"neu", Compare::Neu},
    {"ltu", Compare::Ltu}, {"leu", Compare::Leu}, {"gtu", Compare::Gtu},
    {"geu", Compare::Geu}, {"num", Compare::Num}, {"nan", Compare::Nan}};

const std::unordered_map<std::string_view, Special> kSpecials = {
    {"%tid.x", Special::TidX},       {"%tid.y", Special::TidY},
    {"%tid.z", Special::TidZ},       {"%ntid.x", Special::NtidX},
    {"%ntid.y", Special::NtidY},     {"%ntid.z", Special::NtidZ},
    {"%ctaid.x", Special::CtaidX},   {"%ctaid.y", Special::CtaidY},
    {"%ctaid.z", Special::CtaidZ},   {"%nctaid.x", Special::NctaidX},
    {"%nctaid.y", Special::NctaidY}, {"%nctaid.z", Special::NctaidZ},
    {"%laneid", Special::LaneId},    {"%warpid", Special::WarpId}};

/// Modifiers that carry no semantics the emulator needs.
const std::unordered_set<std::string_view> kNeutral = {
    "sync",  "aligned", "uni",      "nc",  "to",  "cg",  "ca",
    "async", "m8n8",    "m16n8k16", "row", "col", "ptr", "ftz"};

/// Views into the parser's copy of the text: nothing is copied until an
/// instruction, symbol or function keeps it.
constexpr std::string_view kSpace = " \t\r\n";

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos)
    return {};
  size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool isIdentifier(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '$' &&
        c != '%' && c != '.')
      return false;
  return !std::isdigit(static_cast<unsigned char>(s[0]));
}

/// Splits at top-level commas (not inside {}, [] or ()).
std::vector<std::string_view> splitTopLevel(std::string_view s,
                                            char sep = ',') {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t begin = 0;
  auto add = [&](size_t end) {
    std::string_view part = trim(s.substr(begin, end - begin));
    if (part.empty())
      return false;
    parts.push_back(part);
    return true;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '{' || c == '[' || c == '(')
      ++depth;
    else if (c == '}' || c == ']' || c == ')')
      --depth;
    else if (c == sep && depth == 0) {
      if (!add(i))
        parts.emplace_back();
      begin = i + 1;
    }
  }
  add(s.size());
  return parts;
}

/// An unsigned integer in `base` filling all of `s`.
bool parseDigits(std::string_view s, int base, uint64_t &value) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

/// A PTX integer: optional sign, decimal, 0x hex or 0 octal, optional U.
bool parseInteger(std::string_view s, uint64_t &value) {
  bool negative = !s.empty() && s[0] == '-';
  if (negative || (!s.empty() && s[0] == '+'))
    s.remove_prefix(1);
  if (!s.empty() && (s.back() == 'U' || s.back() == 'u'))
    s.remove_suffix(1);
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;
    s.remove_prefix(1);
  }
  uint64_t v;
  if (!parseDigits(s, base, v))
    return false;
  value = negative ? uint64_t(0) - v : v;
  return true;
}

struct Statement {
  std::string_view text;
  unsigned line;
  bool label = false; // "name:", the colon dropped
};

/// `text` with each `//` comment blanked to its line's end, so that a
/// statement is one contiguous view of it (line breaks stay put).
std::string blankComments(const std::string &text) {
  std::string out = text;
  for (size_t i = out.find("//"); i != std::string::npos;
       i = out.find("//", i)) {
    for (; i < out.size() && out[i] != '\n'; ++i)
      out[i] = ' ';
  }
  return out;
}

/// Splits comment-free PTX into statements: ';'-terminated text, "{" and "}"
/// scopes, "label:" and function headers (ended by the body's '{').
std::vector<Statement> splitStatements(std::string_view text) {
  std::vector<Statement> out;
  unsigned line = 1, start = 1;
  // The statement so far is text[begin, i); `blank` while it is only
  // whitespace.
  size_t begin = 0;
  bool blank = true;
  auto current = [&](size_t i) { return trim(text.substr(begin, i - begin)); };
  auto flush = [&](size_t i, size_t next) {
    if (std::string_view t = current(i); !t.empty())
      out.push_back({t, start});
    begin = next;
    blank = true;
  };
  auto header = [&](size_t i) {
    std::string_view t = current(i);
    for (std::string_view h :
         {".visible", ".entry", ".func", ".weak", ".extern"})
      if (startsWith(t, h))
        return true;
    return false;
  };
  // Only these characters end or scope a statement; the rest only make it
  // non-blank, so runs of them are skipped in one loop.
  static constexpr auto special = [] {
    std::array<bool, 256> table{};
    for (unsigned char c : {'\n', '{', '}', ';', ':'})
      table[c] = true;
    return table;
  }();
  for (size_t i = 0; i < text.size(); ++i) {
    size_t run = i;
    while (run < text.size() && !special[static_cast<unsigned char>(text[run])])
      ++run;
    if (blank && run > i) {
      start = line;
      blank = text.find_first_not_of(" \t\r", i) >= run;
    }
    if ((i = run) == text.size())
      break;
    char c = text[i];
    if (c == '\n') {
      ++line;
      // Module directives end at the line's end, without ';'.
      if (!blank) {
        std::string_view t = current(i);
        for (std::string_view d : {".version", ".target", ".address_size"})
          if (startsWith(t, d)) {
            flush(i, i + 1);
            break;
          }
      }
    }
    if (blank)
      start = line;
    if ((c == '{' || c == '}') && (blank || (c == '{' && header(i)))) {
      flush(i, i + 1);
      out.push_back({text.substr(i, 1), line});
      continue;
    }
    if (c == ';') {
      flush(i, i + 1);
      continue;
    }
    if (c == ':') {
      // A label's colon; "::" belongs to a state space (shared::cta).
      std::string_view t = current(i);
      bool scope = (i + 1 < text.size() && text[i + 1] == ':') ||
                   (!t.empty() && t.back() == ':');
      if (!scope && isIdentifier(t) && t[0] != '.') {
        out.push_back({t, start, /*label=*/true});
        begin = i + 1;
        blank = true;
        continue;
      }
    }
    if (c != '\n')
      blank = false; // a ':' that is not a label's
  }
  flush(text.size(), text.size());
  return out;
}

class Parser {
public:
  Parser(Module &module, std::string &error) : m(module), error(error) {}

  bool run(const std::string &text) {
    source = blankComments(text);
    std::vector<Statement> statements = splitStatements(source);
    for (size_t i = 0; i < statements.size(); ++i) {
      const Statement &s = statements[i];
      line = s.line;
      if (s.label)
        return fail("unsupported module-scope label `" + std::string(s.text) +
                    ":`");
      if (startsWith(s.text, ".version") || startsWith(s.text, ".address_size"))
        continue;
      if (startsWith(s.text, ".target")) {
        m.target = trim(s.text.substr(7));
        continue;
      }
      if (startsWith(s.text, ".global") || startsWith(s.text, ".shared") ||
          startsWith(s.text, ".extern .shared")) {
        if (!declareVariable(s.text, -1))
          return false;
        continue;
      }
      if (s.text.find(".entry") != std::string_view::npos ||
          s.text.find(".func") != std::string_view::npos) {
        int f = -1;
        if (!functionHeader(s.text, f))
          return false;
        if (i + 1 < statements.size() && statements[i + 1].text == "{") {
          if (!functionBody(statements, i + 1, f, i))
            return false;
        }
        continue;
      }
      return fail("unsupported module-scope statement `" + std::string(s.text) +
                  "`");
    }
    return true;
  }

private:
  Module &m;
  std::string &error;
  unsigned line = 0;
  /// The text without comments; the names below are views into it.
  std::string source;
  std::map<std::string, int, std::less<>> globals; // module-scope symbols
  std::unordered_map<std::string_view, Instruction> decoded; // by opcode text
  // Per function being parsed.
  std::map<std::string, int, std::less<>> locals;
  std::unordered_map<std::string_view, int> registers;
  std::unordered_set<std::string_view> declaredRegisters;
  std::unordered_map<std::string_view, int> labels;
  std::vector<std::string_view> labelNames; // Label operands index these

  bool fail(const std::string &what) {
    error = "line " + std::to_string(line) + ": " + what;
    return false;
  }

  /// ".space [.align N] .type name[N] [= {bytes}]" -> a symbol.
  bool declareVariable(std::string_view text, int function,
                       int *index = nullptr) {
    Symbol sym;
    return parseDeclaration(text, function, sym) &&
           addSymbol(std::move(sym), text, function, index);
  }

  bool parseDeclaration(std::string_view text, int function, Symbol &sym) {
    std::string_view decl = text, init;
    if (size_t eq = text.find('='); eq != std::string_view::npos) {
      decl = text.substr(0, eq);
      init = text.substr(eq + 1);
    }
    sym.function = function;
    std::vector<std::string_view> words;
    for (size_t b = decl.find_first_not_of(kSpace); b != std::string_view::npos;
         b = decl.find_first_not_of(kSpace, b)) {
      size_t e = std::min(decl.find_first_of(kSpace, b), decl.size());
      words.push_back(decl.substr(b, e - b));
      b = e;
    }
    uint64_t element = 0;
    bool external = false;
    for (size_t i = 0; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w == ".global")
        sym.space = Space::Global;
      else if (w == ".shared")
        sym.space = Space::Shared;
      else if (w == ".local")
        sym.space = Space::Local;
      else if (w == ".param")
        sym.space = Space::Param;
      else if (w == ".align" && i + 1 < words.size())
        parseDigits(words[++i], 10, sym.align);
      else if (w == ".extern")
        external = true;
      else if (w == ".ptr" || w == ".visible")
        continue;
      else if (w[0] == '.' && kTypes.count(w.substr(1)))
        element = std::max<unsigned>(8, bitWidth(kTypes.at(w.substr(1)))) / 8;
      else if (sym.name.empty()) {
        size_t b = w.find('[');
        sym.name = w.substr(0, b);
        uint64_t count = 1;
        if (b != std::string_view::npos) {
          // Only `.extern .shared name[]` (dynamic shared memory) may
          // leave its size to the launch.
          sym.dynamic = external && sym.space == Space::Shared &&
                        function < 0 && w.size() == b + 2 && w.back() == ']';
          if (sym.dynamic)
            count = 0;
          else if (w.back() != ']' ||
                   !parseDigits(w.substr(b + 1, w.size() - b - 2), 10, count))
            return fail("variable `" + std::string(w) +
                        "` needs an explicit size");
        }
        sym.size = count; // times the element size below
      } else {
        return fail("unsupported declaration `" + std::string(text) + "`");
      }
    }
    if (sym.space == Space::None || sym.name.empty() || !element)
      return fail("unsupported declaration `" + std::string(text) + "`");
    sym.size *= element;
    sym.align = std::max(sym.align, element);
    if (!init.empty()) {
      std::string_view body = trim(init);
      if (body.size() < 2 || body.front() != '{' || body.back() != '}' ||
          element != 1)
        return fail("unsupported initializer in `" + std::string(text) + "`");
      for (std::string_view v :
           splitTopLevel(body.substr(1, body.size() - 2))) {
        uint64_t byte;
        if (!parseInteger(v, byte))
          return fail("bad initializer value `" + std::string(v) + "`");
        sym.init.push_back(uint8_t(byte));
      }
      if (sym.init.size() > sym.size)
        return fail("initializer of `" + sym.name + "` too long");
    }
    return true;
  }

  bool addSymbol(Symbol sym, std::string_view text, int function, int *index) {
    int idx = int(m.symbols.size());
    if (sym.dynamic) {
      m.dynamicSharedAlign = std::max(m.dynamicSharedAlign, sym.align);
    } else if (sym.space == Space::Shared && function < 0) {
      m.moduleSharedBytes =
          (m.moduleSharedBytes + sym.align - 1) / sym.align * sym.align;
      sym.offset = m.moduleSharedBytes;
      m.moduleSharedBytes += sym.size;
    }
    if (function >= 0) {
      Function &f = m.functions[function];
      uint64_t *area = sym.space == Space::Local    ? &f.localBytes
                       : sym.space == Space::Param  ? &f.paramBytes
                       : sym.space == Space::Shared ? &f.sharedBytes
                                                    : nullptr;
      if (!area)
        return fail("unsupported function-scope declaration `" +
                    std::string(text) + "`");
      *area = (*area + sym.align - 1) / sym.align * sym.align;
      sym.offset = *area;
      *area += sym.size;
      if (sym.space == Space::Shared)
        f.shared.push_back(idx);
      locals[sym.name] = idx;
    } else {
      globals[sym.name] = idx;
    }
    m.symbols.push_back(std::move(sym));
    if (index)
      *index = idx;
    return true;
  }

  /// ".visible .entry name(params) .maxntid ..." or
  /// ".func (returns) name(params)".
  bool functionHeader(std::string_view text, int &index) {
    bool entry = text.find(".entry") != std::string_view::npos;
    size_t at = text.find(entry ? ".entry" : ".func") + (entry ? 6 : 5);
    std::string_view rest = trim(text.substr(at));
    std::string_view returns;
    if (!rest.empty() && rest[0] == '(') {
      size_t close = rest.find(')');
      returns = rest.substr(1, close - 1);
      rest = trim(rest.substr(close + 1));
    }
    size_t open = rest.find('(');
    std::string name(trim(rest.substr(0, open)));
    std::string_view params;
    if (open != std::string_view::npos) {
      size_t close = rest.find(')', open);
      if (close == std::string_view::npos)
        return fail("unterminated parameter list of `" + name + "`");
      params = rest.substr(open + 1, close - open - 1);
    }
    if (!isIdentifier(name))
      return fail("bad function name `" + name + "`");
    auto it = m.functionIndex.find(name);
    if (it == m.functionIndex.end()) {
      it = m.functionIndex.emplace(name, int(m.functions.size())).first;
      m.functions.emplace_back();
      m.functions.back().name = name;
    }
    index = it->second;
    Function &f = m.functions[index];
    f.entry = entry;
    f.line = line;
    // A definition after a prototype redeclares the same parameters.
    f.params.clear();
    f.returns.clear();
    f.paramBytes = 0;
    locals.clear();
    for (std::string_view p : splitTopLevel(returns)) {
      int s;
      if (!declareVariable(p, index, &s))
        return false;
      m.functions[index].returns.push_back(s);
    }
    for (std::string_view p : splitTopLevel(params)) {
      int s;
      if (!declareVariable(p, index, &s))
        return false;
      m.functions[index].params.push_back(s);
    }
    return true;
  }

  bool functionBody(const std::vector<Statement> &statements, size_t open,
                    int f, size_t &last) {
    registers.clear();
    declaredRegisters.clear();
    labels.clear();
    labelNames.clear();
    // Keep the parameters declared by the header.
    m.functions[f].defined = true;
    int depth = 0;
    size_t i = open;
    for (; i < statements.size(); ++i) {
      const Statement &s = statements[i];
      line = s.line;
      if (s.text == "{") {
        ++depth;
        continue;
      }
      if (s.text == "}") {
        if (--depth == 0)
          break;
        continue;
      }
      if (s.label) {
        labels[s.text] = int(m.functions[f].body.size());
        continue;
      }
      if (startsWith(s.text, ".reg")) {
        declareRegisters(s.text);
        continue;
      }
      if (startsWith(s.text, ".pragma") || startsWith(s.text, ".loc "))
        continue;
      if (startsWith(s.text, ".local") || startsWith(s.text, ".shared") ||
          startsWith(s.text, ".param")) {
        // Call sequences redeclare param0/retval0: reuse a big-enough one.
        Symbol sym;
        if (!parseDeclaration(s.text, f, sym))
          return false;
        auto it = locals.find(sym.name);
        if (sym.space == Space::Param && it != locals.end() &&
            m.symbols[it->second].size >= sym.size)
          continue;
        if (!addSymbol(std::move(sym), s.text, f, nullptr))
          return false;
        continue;
      }
      Instruction inst;
      if (!instruction(s.text, inst))
        return false;
      m.functions[f].body.push_back(std::move(inst));
    }
    if (depth != 0)
      return fail("unterminated body of `" + m.functions[f].name + "`");
    last = i;
    Function &fn = m.functions[f];
    for (Instruction &inst : fn.body)
      for (Operand &o : inst.operands)
        if (o.kind == Operand::Kind::Label) {
          auto it = labels.find(labelNames[o.value]);
          line = inst.line;
          if (it == labels.end())
            return fail("unknown label `" + std::string(labelNames[o.value]) +
                        "`");
          o.symbol = it->second;
        }
    fn.registers = unsigned(registers.size());
    return true;
  }

  void declareRegisters(std::string_view text) {
    // ".reg .b32 %r<12>;" or ".reg .u32 r0, r1, alo;" (inline asm).
    std::string_view rest = trim(text.substr(4));
    size_t sp = rest.find_first_of(" \t");
    if (sp == std::string_view::npos)
      return;
    for (std::string_view name : splitTopLevel(trim(rest.substr(sp))))
      if (name.find('<') == std::string_view::npos)
        declaredRegisters.insert(name);
  }

  int reg(std::string_view name) {
    auto it = registers.find(name);
    if (it != registers.end())
      return it->second;
    int idx = int(registers.size());
    registers.emplace(name, idx);
    return idx;
  }

  int lookup(std::string_view name) {
    if (auto it = locals.find(name); it != locals.end())
      return it->second;
    if (auto it = globals.find(name); it != globals.end())
      return it->second;
    return -1;
  }

  bool operand(std::string_view text, Operand &o, bool label = false) {
    std::string_view t = trim(text);
    if (t.empty())
      return fail("empty operand");
    if (label) {
      o.kind = Operand::Kind::Label;
      o.value = labelNames.size();
      labelNames.push_back(t);
      return true;
    }
    if (t[0] == '{') {
      if (t.back() != '}')
        return fail("bad vector operand `" + std::string(t) + "`");
      o.kind = Operand::Kind::Vector;
      for (std::string_view e : splitTopLevel(t.substr(1, t.size() - 2))) {
        Operand element;
        if (!operand(e, element))
          return false;
        o.elements.push_back(std::move(element));
      }
      return true;
    }
    if (t[0] == '[') {
      if (t.back() != ']')
        return fail("bad address operand `" + std::string(t) + "`");
      std::string_view inner = trim(t.substr(1, t.size() - 2));
      o.kind = Operand::Kind::Address;
      size_t plus = inner.find('+');
      std::string_view base = trim(inner.substr(0, plus));
      if (plus != std::string_view::npos &&
          !parseInteger(trim(inner.substr(plus + 1)), o.value))
        return fail("bad address offset in `" + std::string(t) + "`");
      uint64_t absolute;
      if (parseInteger(base, absolute)) {
        o.value += absolute;
        return true;
      }
      if (base[0] == '%' || declaredRegisters.count(base)) {
        o.reg = reg(base);
        return true;
      }
      o.symbol = lookup(base);
      if (o.symbol < 0)
        return fail("unknown symbol `" + std::string(base) + "`");
      return true;
    }
    if (size_t bar = t.find('|'); bar != std::string_view::npos) {
      if (!operand(t.substr(0, bar), o))
        return false;
      o.predicateOut = reg(trim(t.substr(bar + 1)));
      return true;
    }
    if (auto it = kSpecials.find(t); it != kSpecials.end()) {
      o.kind = Operand::Kind::Special;
      o.special = it->second;
      return true;
    }
    if (t[0] == '%' || declaredRegisters.count(t)) {
      if (t.find('.') != std::string_view::npos)
        return fail("unsupported special register `" + std::string(t) + "`");
      o.kind = Operand::Kind::Register;
      o.reg = reg(t);
      return true;
    }
    if (std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '-') {
      o.kind = Operand::Kind::Immediate;
      if (t.size() > 2 && t[0] == '0' &&
          (t[1] == 'f' || t[1] == 'F' || t[1] == 'd' || t[1] == 'D')) {
        if (!parseDigits(t.substr(2), 16, o.value))
          return fail("bad floating-point immediate `" + std::string(t) + "`");
        return true;
      }
      if (!parseInteger(t, o.value))
        return fail("bad immediate `" + std::string(t) + "`");
      return true;
    }
    if (int s = lookup(t); s >= 0) {
      o.kind = Operand::Kind::Symbol;
      o.symbol = s;
      return true;
    }
    if (auto it = m.functionIndex.find(std::string(t));
        it != m.functionIndex.end()) {
      o.kind = Operand::Kind::Function;
      o.symbol = it->second;
      return true;
    }
    return fail("unknown operand `" + std::string(t) + "`");
  }

  bool decode(std::string_view opcode, Instruction &inst) {
    std::vector<std::string_view> tokens;
    {
      size_t b = 0;
      while (true) {
        size_t e = opcode.find('.', b);
        tokens.push_back(opcode.substr(b, e - b));
        if (e == std::string_view::npos)
          break;
        b = e + 1;
      }
    }
    if (tokens[0] == "wgmma" || tokens[0] == "fence" ||
        tokens[0] == "mbarrier" || tokens[0] == "setmaxnreg" ||
        tokens[0] == "prefetch" || startsWith(opcode, "cp.async.bulk"))
      return decodeAsync(opcode, inst);
    // Of atomics, the add the decode kernel counts its splits with.
    if (tokens[0] == "atom") {
      static const std::unordered_map<std::string_view, Type> adds = {
          {"atom.global.add.u32", Type::U32},
          {"atom.global.add.s32", Type::S32},
          {"atom.global.add.u64", Type::U64}};
      auto it = adds.find(opcode);
      if (it == adds.end())
        return fail("unsupported atomic `" + std::string(opcode) +
                    "` (only atom.global.add on 32- and 64-bit integers is "
                    "emulated)");
      inst.opcode = Opcode::Atom;
      inst.space = Space::Global;
      inst.type = it->second;
      return true;
    }
    auto op = kOpcodes.find(tokens[0]);
    if (op == kOpcodes.end())
      return fail("unsupported instruction `" + std::string(opcode) + "`");
    inst.opcode = op->second;
    std::vector<Type> types;
    bool compared = false;
    for (size_t i = 1; i < tokens.size(); ++i) {
      std::string_view t = tokens[i];
      if (auto ty = kTypes.find(t); ty != kTypes.end()) {
        types.push_back(ty->second);
        continue;
      }
      if (inst.opcode == Opcode::Setp) {
        if (!compared && kCompares.count(t)) {
          inst.compare = kCompares.at(t);
          compared = true;
          continue;
        }
        if (compared && (t == "and" || t == "or")) {
          inst.combine = t == "and" ? BoolOp::And : BoolOp::Or;
          continue;
        }
      }
      if (inst.opcode == Opcode::Ld || inst.opcode == Opcode::St ||
          inst.opcode == Opcode::Cvta || inst.opcode == Opcode::Ldmatrix ||
          inst.opcode == Opcode::CpAsync) {
        static const std::unordered_map<std::string_view, Space> spaces = {
            {"global", Space::Global},      {"shared", Space::Shared},
            {"shared::cta", Space::Shared}, {"shared::cluster", Space::Shared},
            {"local", Space::Local},        {"param", Space::Param}};
        static const std::unordered_map<std::string_view, unsigned> vectors = {
            {"v2", 2}, {"x2", 2}, {"v4", 4}, {"x4", 4}, {"x1", 1}};
        if (auto it = spaces.find(t); it != spaces.end()) {
          // cp.async.cg.shared.global: the destination's space counts.
          if (inst.space == Space::None || it->second != Space::Global)
            inst.space = it->second;
          continue;
        }
        if (assignNamed(vectors, t, inst.vector))
          continue;
      }
      if (inst.opcode == Opcode::CpAsync) {
        static const std::unordered_map<std::string_view, Opcode> forms = {
            {"commit_group", Opcode::CpAsyncCommit},
            {"wait_group", Opcode::CpAsyncWait},
            {"wait_all", Opcode::CpAsyncWait}};
        if (assignNamed(forms, t, inst.opcode))
          continue;
      }
      if (inst.opcode == Opcode::Shfl) {
        static const std::unordered_map<std::string_view, ShuffleMode> modes = {
            {"bfly", ShuffleMode::Bfly},
            {"up", ShuffleMode::Up},
            {"down", ShuffleMode::Down},
            {"idx", ShuffleMode::Idx}};
        if (assignNamed(modes, t, inst.shuffle))
          continue;
      }
      if (inst.opcode == Opcode::Bar && t == "arrive") {
        inst.opcode = Opcode::BarArrive;
        continue;
      }
      if (inst.opcode == Opcode::Vote) {
        static const std::unordered_map<std::string_view, VoteMode> modes = {
            {"any", VoteMode::Any},
            {"all", VoteMode::All},
            {"uni", VoteMode::Uni},
            {"ballot", VoteMode::Ballot}};
        if (assignNamed(modes, t, inst.vote))
          continue;
      }
      static const std::unordered_map<std::string_view, uint32_t> modifiers = {
          {"lo", Lo},
          {"hi", Hi},
          {"wide", Wide},
          {"cc", CarryOut},
          {"approx", Approx},
          {"NaN", PropagateNaN},
          {"trans", Trans},
          {"rn", RoundNearest},
          {"rz", RoundZero},
          {"rm", RoundDown},
          {"rp", RoundUp},
          {"wrap", Wrap},
          {"l", ShiftLeft},
          {"sat", Sat},
          {"rni", RoundNearest | IntegerRound},
          {"rzi", RoundZero | IntegerRound},
          {"rmi", RoundDown | IntegerRound},
          {"rpi", RoundUp | IntegerRound}};
      if (auto mod = modifiers.find(t); mod != modifiers.end()) {
        inst.modifiers |= mod->second;
        continue;
      }
      if (t == "ftz") {
        inst.modifiers |= Ftz;
        continue;
      }
      if (inst.opcode == Opcode::Cvta && t == "to") {
        inst.modifiers |= ToSpace;
        continue;
      }
      if (kNeutral.count(t))
        continue;
      return fail("unsupported modifier ." + std::string(t) + " in `" +
                  std::string(opcode) + "`");
    }
    if (!types.empty())
      inst.type = types.front();
    // Only kernel parameters have generic addresses (cvta.param).
    if (inst.opcode == Opcode::Cvta && inst.space == Space::Param &&
        (inst.modifiers & ToSpace))
      return fail("unsupported cvta `" + std::string(opcode) + "`");
    if (inst.opcode == Opcode::Cvt) {
      if (types.size() != 2)
        return fail("cvt needs two types: `" + std::string(opcode) + "`");
      inst.source = types[1];
    }
    if (inst.opcode == Opcode::Mma) {
      if (opcode != "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32")
        return fail("unsupported mma shape or types `" + std::string(opcode) +
                    "`");
      inst.type = Type::F32;
      inst.source = Type::BF16;
    }
    if (inst.opcode == Opcode::Ldmatrix &&
        (opcode.find("m8n8") == std::string_view::npos ||
         inst.space != Space::Shared || inst.type != Type::B16))
      return fail("unsupported ldmatrix `" + std::string(opcode) + "`");
    if (inst.opcode == Opcode::CpAsync &&
        (inst.space != Space::Shared ||
         opcode.find("shared.global") == std::string_view::npos))
      return fail("unsupported cp.async `" + std::string(opcode) + "`");
    if (inst.opcode == Opcode::Shf && !(inst.modifiers & ShiftLeft) &&
        opcode.find(".r.") == std::string_view::npos)
      return fail("unsupported funnel shift `" + std::string(opcode) + "`");
    if ((inst.opcode == Opcode::Ld || inst.opcode == Opcode::St) &&
        inst.space == Space::None)
      return fail("generic addressing is not supported: `" +
                  std::string(opcode) + "`");
    return true;
  }

  /// The wgmma forms the flash kernels use, fence.proxy.async, mbarriers,
  /// TMA loads, tensor-map prefetches and setmaxnreg: exact spellings,
  /// anything else is refused.
  bool decodeAsync(std::string_view opcode, Instruction &inst) {
    static const std::unordered_map<std::string_view, Opcode> forms = {
        {"wgmma.fence.sync.aligned", Opcode::WgmmaFence},
        {"wgmma.commit_group.sync.aligned", Opcode::WgmmaCommit},
        {"wgmma.wait_group.sync.aligned", Opcode::WgmmaWait},
        {"fence.proxy.async", Opcode::FenceProxyAsync},
        {"fence.proxy.async.shared::cta", Opcode::FenceProxyAsync},
        {"fence.mbarrier_init.release.cluster", Opcode::OrderingFence},
        {"fence.proxy.tensormap::generic.acquire.gpu", Opcode::OrderingFence},
        {"fence.acq_rel.gpu", Opcode::MemoryFence},
        {"fence.sc.gpu", Opcode::MemoryFence},
        {"setmaxnreg.inc.sync.aligned.u32", Opcode::SetMaxNReg},
        {"setmaxnreg.dec.sync.aligned.u32", Opcode::SetMaxNReg},
        {"mbarrier.init.shared.b64", Opcode::MbarrierInit},
        {"mbarrier.init.shared::cta.b64", Opcode::MbarrierInit},
        {"mbarrier.arrive.shared.b64", Opcode::MbarrierArrive},
        {"mbarrier.arrive.shared::cta.b64", Opcode::MbarrierArrive},
        {"mbarrier.arrive.release.cta.shared::cta.b64", Opcode::MbarrierArrive},
        {"mbarrier.arrive.expect_tx.shared.b64",
         Opcode::MbarrierArriveExpectTx},
        {"mbarrier.arrive.expect_tx.shared::cta.b64",
         Opcode::MbarrierArriveExpectTx},
        {"mbarrier.arrive.expect_tx.release.cta.shared::cta.b64",
         Opcode::MbarrierArriveExpectTx},
        {"mbarrier.try_wait.parity.shared.b64", Opcode::MbarrierTryWait},
        {"mbarrier.try_wait.parity.shared::cta.b64", Opcode::MbarrierTryWait}};
    if (auto it = forms.find(opcode); it != forms.end()) {
      inst.opcode = it->second;
      return true;
    }
    // A tensor map at a parameter-space or a generic address.
    if (opcode == "prefetch.param.tensormap" ||
        opcode == "prefetch.tensormap") {
      inst.opcode = Opcode::PrefetchTensorMap;
      inst.space = opcode == "prefetch.tensormap" ? Space::None : Space::Param;
      return true;
    }
    // cp.async.bulk.tensor.Nd.shared::cluster.global.tile
    //   .mbarrier::complete_tx::bytes (tile mode, no multicast or hint)
    constexpr std::string_view bulk = "cp.async.bulk.tensor.";
    for (std::string_view suffix :
         {"d.shared::cluster.global.tile.mbarrier::complete_tx::bytes",
          "d.shared::cluster.global.mbarrier::complete_tx::bytes"})
      if (opcode.size() == bulk.size() + 1 + suffix.size() &&
          startsWith(opcode, bulk) &&
          opcode.compare(bulk.size() + 1, suffix.size(), suffix) == 0 &&
          opcode[bulk.size()] >= '1' && opcode[bulk.size()] <= '5') {
        inst.opcode = Opcode::TensorLoad;
        inst.n = unsigned(opcode[bulk.size()] - '0');
        return true;
      }
    // wgmma.mma_async.sync.aligned.m64nNk16.f32.bf16.bf16
    constexpr std::string_view prefix = "wgmma.mma_async.sync.aligned.m64n",
                               suffix = "k16.f32.bf16.bf16";
    if (startsWith(opcode, prefix) &&
        opcode.size() > prefix.size() + suffix.size() &&
        opcode.compare(opcode.size() - suffix.size(), suffix.size(), suffix) ==
            0) {
      std::string_view n = opcode.substr(
          prefix.size(), opcode.size() - prefix.size() - suffix.size());
      uint64_t value = 0;
      if (parseInteger(n, value) && value >= 8 && value <= 256 &&
          value % 8 == 0) {
        inst.opcode = Opcode::WgmmaMma;
        inst.n = unsigned(value);
        inst.type = Type::F32;
        inst.source = Type::BF16;
        return true;
      }
    }
    return fail("unsupported instruction `" + std::string(opcode) +
                "` (of wgmma, only m64nNk16 f32 += bf16 * bf16 is emulated)");
  }

  bool instruction(std::string_view text, Instruction &inst) {
    inst.line = line;
    inst.text = text;
    std::string_view t = text;
    if (t[0] == '@') {
      size_t sp = t.find_first_of(kSpace);
      std::string_view guard = t.substr(1, sp - 1);
      inst.guardNegated = !guard.empty() && guard[0] == '!';
      inst.guard = reg(inst.guardNegated ? guard.substr(1) : guard);
      t = sp == std::string_view::npos ? std::string_view()
                                       : trim(t.substr(sp));
      if (t.empty())
        return fail("guarded statement without an instruction `" +
                    std::string(text) + "`");
    }
    size_t sp = t.find_first_of(kSpace);
    std::string_view opcode = t.substr(0, sp);
    std::string_view rest =
        sp == std::string_view::npos ? std::string_view() : trim(t.substr(sp));
    // A module spells few distinct opcodes: each is decoded once.
    auto known = decoded.find(opcode);
    if (known == decoded.end()) {
      Instruction fresh;
      if (!decode(opcode, fresh))
        return false;
      known = decoded.emplace(opcode, std::move(fresh)).first;
    }
    // What decode set, with what this statement set before it.
    Instruction decodedInst = known->second;
    decodedInst.line = inst.line;
    decodedInst.text = std::move(inst.text);
    decodedInst.guard = inst.guard;
    decodedInst.guardNegated = inst.guardNegated;
    inst = std::move(decodedInst);
    if (inst.opcode == Opcode::Call) {
      // call.uni (ret), fn, (args);  or  call.uni fn, (args);
      std::vector<std::string_view> parts = splitTopLevel(rest);
      Operand rets, fn, args;
      rets.kind = args.kind = Operand::Kind::Vector;
      size_t i = 0;
      auto list = [&](std::string_view p, Operand &into) {
        for (std::string_view e : splitTopLevel(p.substr(1, p.size() - 2))) {
          Operand a;
          if (!operand(e, a))
            return false;
          into.elements.push_back(std::move(a));
        }
        return true;
      };
      if (i < parts.size() && parts[i][0] == '(' && !list(parts[i++], rets))
        return false;
      if (i >= parts.size() || !operand(parts[i++], fn) ||
          fn.kind != Operand::Kind::Function)
        return fail("bad call target in `" + std::string(text) + "`");
      if (i < parts.size() && (parts[i][0] != '(' || !list(parts[i++], args)))
        return false;
      inst.operands = {std::move(rets), std::move(fn), std::move(args)};
      return true;
    }
    // [dst], [tensor map, {coordinates}], [mbarrier]
    if (inst.opcode == Opcode::TensorLoad) {
      std::vector<std::string_view> parts = splitTopLevel(rest);
      Operand dst, map, coordinates, barrier;
      if (parts.size() != 3 || parts[1].size() < 2 || parts[1][0] != '[' ||
          !operand(parts[0], dst) || !operand(parts[2], barrier))
        return fail("unsupported cp.async.bulk.tensor operands: `" +
                    std::string(text) + "`");
      std::vector<std::string_view> inner =
          splitTopLevel(parts[1].substr(1, parts[1].size() - 2));
      if (inner.size() != 2 || !operand(inner[0], map) ||
          map.kind != Operand::Kind::Register ||
          !operand(inner[1], coordinates) ||
          coordinates.kind != Operand::Kind::Vector ||
          coordinates.elements.size() != inst.n)
        return fail("cp.async.bulk.tensor needs [map register, {" +
                    std::to_string(inst.n) + " coordinates}]: `" +
                    std::string(text) + "`");
      inst.operands = {std::move(dst), std::move(map), std::move(coordinates),
                       std::move(barrier)};
      return true;
    }
    for (std::string_view p : splitTopLevel(rest)) {
      Operand o;
      bool label = inst.opcode == Opcode::Bra;
      if (!operand(p, o, label))
        return false;
      inst.operands.push_back(std::move(o));
    }
    // wgmma with A in registers: {d}, {a0..a3}, b-desc, scale-d,
    // imm-scale-a, imm-scale-b, imm-trans-b. (A from a descriptor would
    // have one more immediate.)
    if (inst.opcode == Opcode::WgmmaMma) {
      const std::vector<Operand> &o = inst.operands;
      auto isImmediate = [&](size_t i) {
        return o[i].kind == Operand::Kind::Immediate;
      };
      if (o.size() != 7 || o[0].kind != Operand::Kind::Vector ||
          o[0].elements.size() != inst.n / 2 ||
          o[1].kind != Operand::Kind::Vector || o[1].elements.size() != 4 ||
          o[2].kind != Operand::Kind::Register || !isImmediate(4) ||
          !isImmediate(5) || !isImmediate(6))
        return fail("unsupported wgmma operands (expected {" +
                    std::to_string(inst.n / 2) +
                    " f32}, {4 bf16x2 A registers}, B descriptor, scale-d, "
                    "3 immediates): `" +
                    std::string(text) + "`");
    }
    if (inst.opcode == Opcode::PrefetchTensorMap &&
        (inst.operands.size() != 1 ||
         inst.operands[0].kind != Operand::Kind::Address))
      return fail("prefetch.tensormap needs one [address]: `" +
                  std::string(text) + "`");
    if (inst.opcode == Opcode::WgmmaWait &&
        (inst.operands.size() != 1 ||
         inst.operands[0].kind != Operand::Kind::Immediate))
      return fail("wgmma.wait_group needs an immediate count: `" +
                  std::string(text) + "`");
    // A warpgroup's registers per thread: 24 to 256, a multiple of 8.
    if (inst.opcode == Opcode::SetMaxNReg &&
        (inst.operands.size() != 1 ||
         inst.operands[0].kind != Operand::Kind::Immediate ||
         inst.operands[0].value < 24 || inst.operands[0].value > 256 ||
         inst.operands[0].value % 8))
      return fail("setmaxnreg needs an immediate count of 24 to 256, a "
                  "multiple of 8: `" +
                  std::string(text) + "`");
    // `bar.sync 0` (every thread of the CTA), or a named barrier: an id
    // and a thread count (immediates or registers).
    if (inst.opcode == Opcode::Bar || inst.opcode == Opcode::BarArrive) {
      const std::vector<Operand> &o = inst.operands;
      auto valueOperand = [](const Operand &x) {
        return x.kind == Operand::Kind::Immediate ||
               x.kind == Operand::Kind::Register;
      };
      bool whole = inst.opcode == Opcode::Bar && o.size() == 1 &&
                   o[0].kind == Operand::Kind::Immediate && o[0].value == 0;
      bool named = o.size() == 2 && valueOperand(o[0]) && valueOperand(o[1]);
      if (!whole && !named)
        return fail("barriers are `bar.sync 0` or `bar.sync|bar.arrive id, "
                    "threads`: `" +
                    std::string(text) + "`");
      if (named && inst.opcode == Opcode::Bar)
        inst.opcode = Opcode::BarSync;
    }
    return true;
  }
};

} // namespace

bool hybrid::emu::parse(const std::string &text, Module &module,
                        std::string &error) {
  Parser parser(module, error);
  return parser.run(text);
}
