//===- PtxParser.cpp - PTX text to emulator instructions ------------------===//
//
// PTX statements end with ';' except labels, scope braces and function
// headers; LLVM's output is regular enough that a statement splitter and an
// operand parser cover it. Names resolve while parsing (function scope
// first, then module scope); branch labels once the body is complete.
//
//===----------------------------------------------------------------------===//

#include "Ptx.h"

#include <cctype>
#include <cstring>
#include <set>
#include <unordered_map>

using namespace hybrid::emu;

namespace {

/// Sets `field` to `names[name]` if `name` is one of them.
template <typename T>
bool assignNamed(const std::unordered_map<std::string, T> &names,
                 const std::string &name, T &field) {
  auto it = names.find(name);
  if (it == names.end())
    return false;
  field = it->second;
  return true;
}

const std::unordered_map<std::string, Type> kTypes = {
    {"pred", Type::Pred}, {"b8", Type::B8},         {"b16", Type::B16},
    {"b32", Type::B32},   {"b64", Type::B64},       {"u8", Type::U8},
    {"u16", Type::U16},   {"u32", Type::U32},       {"u64", Type::U64},
    {"s8", Type::S8},     {"s16", Type::S16},       {"s32", Type::S32},
    {"s64", Type::S64},   {"f16", Type::F16},       {"f16x2", Type::F16x2},
    {"bf16", Type::BF16}, {"bf16x2", Type::BF16x2}, {"f32", Type::F32},
    {"f64", Type::F64}};

const std::unordered_map<std::string, Opcode> kOpcodes = {
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

const std::unordered_map<std::string, Compare> kCompares = {
    {"eq", Compare::Eq},   {"ne", Compare::Ne},   {"lt", Compare::Lt},
    {"le", Compare::Le},   {"gt", Compare::Gt},   {"ge", Compare::Ge},
    {"lo", Compare::Lo},   {"ls", Compare::Ls},   {"hi", Compare::Hi},
    {"hs", Compare::Hs},   {"equ", Compare::Equ}, {"neu", Compare::Neu},
    {"ltu", Compare::Ltu}, {"leu", Compare::Leu}, {"gtu", Compare::Gtu},
    {"geu", Compare::Geu}, {"num", Compare::Num}, {"nan", Compare::Nan}};

const std::unordered_map<std::string, Special> kSpecials = {
    {"%tid.x", Special::TidX},       {"%tid.y", Special::TidY},
    {"%tid.z", Special::TidZ},       {"%ntid.x", Special::NtidX},
    {"%ntid.y", Special::NtidY},     {"%ntid.z", Special::NtidZ},
    {"%ctaid.x", Special::CtaidX},   {"%ctaid.y", Special::CtaidY},
    {"%ctaid.z", Special::CtaidZ},   {"%nctaid.x", Special::NctaidX},
    {"%nctaid.y", Special::NctaidY}, {"%nctaid.z", Special::NctaidZ},
    {"%laneid", Special::LaneId},    {"%warpid", Special::WarpId}};

/// Modifiers that carry no semantics the emulator needs.
const std::set<std::string> kNeutral = {
    "sync",  "aligned", "uni",      "nc",  "to",  "cg",  "ca",
    "async", "m8n8",    "m16n8k16", "row", "col", "ptr", "ftz"};

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool isIdentifier(const std::string &s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '$' &&
        c != '%' && c != '.')
      return false;
  return !std::isdigit(static_cast<unsigned char>(s[0]));
}

/// Splits at top-level commas (not inside {}, [] or ()).
std::vector<std::string> splitTopLevel(const std::string &s, char sep = ',') {
  std::vector<std::string> parts;
  int depth = 0;
  size_t begin = 0;
  auto add = [&](size_t end) {
    size_t b = s.find_first_not_of(" \t\r\n", begin);
    if (b >= end)
      return false;
    size_t e = s.find_last_not_of(" \t\r\n", end - 1);
    parts.push_back(s.substr(b, e - b + 1));
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

bool parseInteger(const std::string &s, uint64_t &value) {
  if (s.empty())
    return false;
  const char *p = s.c_str();
  bool negative = *p == '-';
  if (negative || *p == '+')
    ++p;
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(p, &end, 0);
  if (end == p || errno)
    return false;
  if (*end == 'U' || *end == 'u')
    ++end;
  if (*end)
    return false;
  value = negative ? uint64_t(0) - v : v;
  return true;
}

struct Statement {
  std::string text;
  unsigned line;
};

/// Splits PTX into statements: ';'-terminated text, "{" and "}" scopes,
/// "label:" and function headers (ended by the body's '{').
std::vector<Statement> splitStatements(const std::string &text) {
  std::vector<Statement> out;
  std::string cur;
  unsigned line = 1, start = 1;
  auto emit = [&](const std::string &s, unsigned at) {
    std::string t = trim(s);
    if (!t.empty())
      out.push_back({t, at});
  };
  auto header = [&]() {
    std::string t = trim(cur);
    for (const char *h : {".visible", ".entry", ".func", ".weak", ".extern"})
      if (t.rfind(h, 0) == 0)
        return true;
    return false;
  };
  // Whether `cur` is only whitespace so far: trimming it at every
  // character made splitting quadratic in a statement's length (a fifth of
  // a short emulated run went to parsing).
  bool blank = true;
  auto flush = [&]() {
    emit(cur, start);
    cur.clear();
    blank = true;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i < text.size() && text[i] != '\n')
        ++i;
      --i;
      continue;
    }
    if (c == '\n') {
      ++line;
      // Module directives end at the line's end, without ';'.
      if (!blank) {
        std::string t = trim(cur);
        for (const char *d : {".version", ".target", ".address_size"})
          if (t.rfind(d, 0) == 0) {
            flush();
            break;
          }
      }
    }
    if (blank)
      start = line;
    if ((c == '{' || c == '}') && (blank || (c == '{' && header()))) {
      flush();
      out.push_back({std::string(1, c), line});
      continue;
    }
    if (c == ';') {
      flush();
      continue;
    }
    if (c == ':') {
      // A label's colon; "::" belongs to a state space (shared::cta).
      std::string t = trim(cur);
      bool scope = (i + 1 < text.size() && text[i + 1] == ':') ||
                   (!t.empty() && t.back() == ':');
      if (!scope && isIdentifier(t) && t[0] != '.') {
        out.push_back({t + ":", start});
        cur.clear();
        blank = true;
        continue;
      }
    }
    cur += c;
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
      blank = false;
  }
  emit(cur, start);
  return out;
}

class Parser {
public:
  Parser(Module &module, std::string &error) : m(module), error(error) {}

  bool run(const std::string &text) {
    std::vector<Statement> statements = splitStatements(text);
    for (size_t i = 0; i < statements.size(); ++i) {
      const Statement &s = statements[i];
      line = s.line;
      if (s.text.rfind(".version", 0) == 0 ||
          s.text.rfind(".address_size", 0) == 0)
        continue;
      if (s.text.rfind(".target", 0) == 0) {
        m.target = trim(s.text.substr(7));
        continue;
      }
      if (s.text.rfind(".global", 0) == 0 || s.text.rfind(".shared", 0) == 0 ||
          s.text.rfind(".extern .shared", 0) == 0) {
        if (!declareVariable(s.text, -1))
          return false;
        continue;
      }
      if (s.text.find(".entry") != std::string::npos ||
          s.text.find(".func") != std::string::npos) {
        int f = -1;
        if (!functionHeader(s.text, f))
          return false;
        if (i + 1 < statements.size() && statements[i + 1].text == "{") {
          if (!functionBody(statements, i + 1, f, i))
            return false;
        }
        continue;
      }
      return fail("unsupported module-scope statement `" + s.text + "`");
    }
    return true;
  }

private:
  Module &m;
  std::string &error;
  unsigned line = 0;
  std::map<std::string, int> globals;                   // module-scope symbols
  std::unordered_map<std::string, Instruction> decoded; // by opcode text
  // Per function being parsed.
  std::map<std::string, int> locals;
  std::unordered_map<std::string, int> registers;
  std::set<std::string> declaredRegisters;
  std::map<std::string, int> labels;
  std::vector<std::string> labelNames; // Label operands index these

  bool fail(const std::string &what) {
    error = "line " + std::to_string(line) + ": " + what;
    return false;
  }

  /// ".space [.align N] .type name[N] [= {bytes}]" -> a symbol.
  bool declareVariable(const std::string &text, int function,
                       int *index = nullptr) {
    Symbol sym;
    return parseDeclaration(text, function, sym) &&
           addSymbol(std::move(sym), text, function, index);
  }

  bool parseDeclaration(const std::string &text, int function, Symbol &sym) {
    std::string decl = text, init;
    if (size_t eq = text.find('='); eq != std::string::npos) {
      decl = text.substr(0, eq);
      init = text.substr(eq + 1);
    }
    sym.function = function;
    std::vector<std::string> words;
    {
      std::string w;
      for (char c : decl + " ") {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (!w.empty())
            words.push_back(w);
          w.clear();
        } else {
          w += c;
        }
      }
    }
    uint64_t element = 0;
    bool external = false;
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string &w = words[i];
      if (w == ".global")
        sym.space = Space::Global;
      else if (w == ".shared")
        sym.space = Space::Shared;
      else if (w == ".local")
        sym.space = Space::Local;
      else if (w == ".param")
        sym.space = Space::Param;
      else if (w == ".align" && i + 1 < words.size())
        sym.align = std::strtoull(words[++i].c_str(), nullptr, 10);
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
        if (b != std::string::npos) {
          // Only `.extern .shared name[]` (dynamic shared memory) may
          // leave its size to the launch.
          sym.dynamic = external && sym.space == Space::Shared &&
                        function < 0 && w.size() == b + 2 && w.back() == ']';
          if (!sym.dynamic && (w.back() != ']' || w.size() == b + 2))
            return fail("variable `" + w + "` needs an explicit size");
          count =
              sym.dynamic ? 0 : std::strtoull(w.c_str() + b + 1, nullptr, 10);
        }
        sym.size = count; // times the element size below
      } else {
        return fail("unsupported declaration `" + text + "`");
      }
    }
    if (sym.space == Space::None || sym.name.empty() || !element)
      return fail("unsupported declaration `" + text + "`");
    sym.size *= element;
    sym.align = std::max(sym.align, element);
    if (!init.empty()) {
      std::string body = trim(init);
      if (body.size() < 2 || body.front() != '{' || body.back() != '}' ||
          element != 1)
        return fail("unsupported initializer in `" + text + "`");
      for (const std::string &v :
           splitTopLevel(body.substr(1, body.size() - 2))) {
        uint64_t byte;
        if (!parseInteger(v, byte))
          return fail("bad initializer value `" + v + "`");
        sym.init.push_back(uint8_t(byte));
      }
      if (sym.init.size() > sym.size)
        return fail("initializer of `" + sym.name + "` too long");
    }
    return true;
  }

  bool addSymbol(Symbol sym, const std::string &text, int function,
                 int *index) {
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
        return fail("unsupported function-scope declaration `" + text + "`");
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
  bool functionHeader(const std::string &text, int &index) {
    bool entry = text.find(".entry") != std::string::npos;
    size_t at = text.find(entry ? ".entry" : ".func") + (entry ? 6 : 5);
    std::string rest = trim(text.substr(at));
    std::string returns;
    if (!rest.empty() && rest[0] == '(') {
      size_t close = rest.find(')');
      returns = rest.substr(1, close - 1);
      rest = trim(rest.substr(close + 1));
    }
    size_t open = rest.find('(');
    std::string name = trim(rest.substr(0, open));
    std::string params;
    if (open != std::string::npos) {
      size_t close = rest.find(')', open);
      if (close == std::string::npos)
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
    for (const std::string &p : splitTopLevel(returns)) {
      int s;
      if (!declareVariable(p, index, &s))
        return false;
      m.functions[index].returns.push_back(s);
    }
    for (const std::string &p : splitTopLevel(params)) {
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
      if (s.text.back() == ':') {
        labels[s.text.substr(0, s.text.size() - 1)] =
            int(m.functions[f].body.size());
        continue;
      }
      if (s.text.rfind(".reg", 0) == 0) {
        declareRegisters(s.text);
        continue;
      }
      if (s.text.rfind(".pragma", 0) == 0 || s.text.rfind(".loc ", 0) == 0)
        continue;
      if (s.text.rfind(".local", 0) == 0 || s.text.rfind(".shared", 0) == 0 ||
          s.text.rfind(".param", 0) == 0) {
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
            return fail("unknown label `" + labelNames[o.value] + "`");
          o.symbol = it->second;
        }
    fn.registers = unsigned(registers.size());
    return true;
  }

  void declareRegisters(const std::string &text) {
    // ".reg .b32 %r<12>;" or ".reg .u32 r0, r1, alo;" (inline asm).
    std::string rest = trim(text.substr(4));
    size_t sp = rest.find_first_of(" \t");
    if (sp == std::string::npos)
      return;
    for (const std::string &name : splitTopLevel(trim(rest.substr(sp)))) {
      std::string base = name.substr(0, name.find('<'));
      if (name.find('<') == std::string::npos)
        declaredRegisters.insert(base);
    }
  }

  int reg(const std::string &name) {
    auto it = registers.find(name);
    if (it != registers.end())
      return it->second;
    int idx = int(registers.size());
    registers.emplace(name, idx);
    return idx;
  }

  int lookup(const std::string &name) {
    if (auto it = locals.find(name); it != locals.end())
      return it->second;
    if (auto it = globals.find(name); it != globals.end())
      return it->second;
    return -1;
  }

  bool operand(const std::string &text, Operand &o, bool label = false) {
    std::string t = trim(text);
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
        return fail("bad vector operand `" + t + "`");
      o.kind = Operand::Kind::Vector;
      for (const std::string &e : splitTopLevel(t.substr(1, t.size() - 2))) {
        Operand element;
        if (!operand(e, element))
          return false;
        o.elements.push_back(element);
      }
      return true;
    }
    if (t[0] == '[') {
      if (t.back() != ']')
        return fail("bad address operand `" + t + "`");
      std::string inner = trim(t.substr(1, t.size() - 2));
      o.kind = Operand::Kind::Address;
      size_t plus = inner.find('+');
      std::string base = trim(inner.substr(0, plus));
      if (plus != std::string::npos &&
          !parseInteger(trim(inner.substr(plus + 1)), o.value))
        return fail("bad address offset in `" + t + "`");
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
        return fail("unknown symbol `" + base + "`");
      return true;
    }
    if (size_t bar = t.find('|'); bar != std::string::npos) {
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
      if (t.find('.') != std::string::npos)
        return fail("unsupported special register `" + t + "`");
      o.kind = Operand::Kind::Register;
      o.reg = reg(t);
      return true;
    }
    if (std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '-') {
      o.kind = Operand::Kind::Immediate;
      if (t.size() > 2 && t[0] == '0' &&
          (t[1] == 'f' || t[1] == 'F' || t[1] == 'd' || t[1] == 'D')) {
        o.value = std::strtoull(t.c_str() + 2, nullptr, 16);
        return true;
      }
      if (!parseInteger(t, o.value))
        return fail("bad immediate `" + t + "`");
      return true;
    }
    if (int s = lookup(t); s >= 0) {
      o.kind = Operand::Kind::Symbol;
      o.symbol = s;
      return true;
    }
    if (auto it = m.functionIndex.find(t); it != m.functionIndex.end()) {
      o.kind = Operand::Kind::Function;
      o.symbol = it->second;
      return true;
    }
    return fail("unknown operand `" + t + "`");
  }
  bool decode(const std::string &opcode, Instruction &inst) {
    std::vector<std::string> tokens;
    {
      size_t b = 0;
      while (true) {
        size_t e = opcode.find('.', b);
        tokens.push_back(opcode.substr(b, e - b));
        if (e == std::string::npos)
          break;
        b = e + 1;
      }
    }
    if (tokens[0] == "wgmma" || tokens[0] == "fence" ||
        tokens[0] == "mbarrier" || tokens[0] == "setmaxnreg" ||
        opcode.rfind("cp.async.bulk", 0) == 0)
      return decodeAsync(opcode, inst);
    auto op = kOpcodes.find(tokens[0]);
    if (op == kOpcodes.end())
      return fail("unsupported instruction `" + opcode + "`");
    inst.opcode = op->second;
    std::vector<Type> types;
    bool compared = false;
    for (size_t i = 1; i < tokens.size(); ++i) {
      const std::string &t = tokens[i];
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
        static const std::unordered_map<std::string, Space> spaces = {
            {"global", Space::Global},      {"shared", Space::Shared},
            {"shared::cta", Space::Shared}, {"shared::cluster", Space::Shared},
            {"local", Space::Local},        {"param", Space::Param}};
        static const std::unordered_map<std::string, unsigned> vectors = {
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
        static const std::unordered_map<std::string, Opcode> forms = {
            {"commit_group", Opcode::CpAsyncCommit},
            {"wait_group", Opcode::CpAsyncWait},
            {"wait_all", Opcode::CpAsyncWait}};
        if (assignNamed(forms, t, inst.opcode))
          continue;
      }
      if (inst.opcode == Opcode::Shfl) {
        static const std::unordered_map<std::string, ShuffleMode> modes = {
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
        static const std::unordered_map<std::string, VoteMode> modes = {
            {"any", VoteMode::Any},
            {"all", VoteMode::All},
            {"uni", VoteMode::Uni},
            {"ballot", VoteMode::Ballot}};
        if (assignNamed(modes, t, inst.vote))
          continue;
      }
      static const std::unordered_map<std::string, uint32_t> modifiers = {
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
      if (kNeutral.count(t))
        continue;
      return fail("unsupported modifier ." + t + " in `" + opcode + "`");
    }
    if (!types.empty())
      inst.type = types.front();
    if (inst.opcode == Opcode::Cvt) {
      if (types.size() != 2)
        return fail("cvt needs two types: `" + opcode + "`");
      inst.source = types[1];
    }
    if (inst.opcode == Opcode::Mma) {
      if (opcode != "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32")
        return fail("unsupported mma shape or types `" + opcode + "`");
      inst.type = Type::F32;
      inst.source = Type::BF16;
    }
    if (inst.opcode == Opcode::Ldmatrix &&
        (opcode.find("m8n8") == std::string::npos ||
         inst.space != Space::Shared || inst.type != Type::B16))
      return fail("unsupported ldmatrix `" + opcode + "`");
    if (inst.opcode == Opcode::CpAsync &&
        (inst.space != Space::Shared ||
         opcode.find("shared.global") == std::string::npos))
      return fail("unsupported cp.async `" + opcode + "`");
    if (inst.opcode == Opcode::Shf && !(inst.modifiers & ShiftLeft) &&
        opcode.find(".r.") == std::string::npos)
      return fail("unsupported funnel shift `" + opcode + "`");
    if ((inst.opcode == Opcode::Ld || inst.opcode == Opcode::St) &&
        inst.space == Space::None)
      return fail("generic addressing is not supported: `" + opcode + "`");
    return true;
  }

  /// The wgmma forms the flash kernels use, fence.proxy.async, mbarriers,
  /// TMA loads and setmaxnreg: exact spellings, anything else is refused.
  bool decodeAsync(const std::string &opcode, Instruction &inst) {
    static const std::unordered_map<std::string, Opcode> forms = {
        {"wgmma.fence.sync.aligned", Opcode::WgmmaFence},
        {"wgmma.commit_group.sync.aligned", Opcode::WgmmaCommit},
        {"wgmma.wait_group.sync.aligned", Opcode::WgmmaWait},
        {"fence.proxy.async", Opcode::FenceProxyAsync},
        {"fence.proxy.async.shared::cta", Opcode::FenceProxyAsync},
        {"fence.mbarrier_init.release.cluster", Opcode::OrderingFence},
        {"fence.proxy.tensormap::generic.acquire.gpu", Opcode::OrderingFence},
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
    // cp.async.bulk.tensor.Nd.shared::cluster.global.tile
    //   .mbarrier::complete_tx::bytes (tile mode, no multicast or hint)
    const std::string bulk = "cp.async.bulk.tensor.",
                      form = "d.shared::cluster.global.tile.mbarrier::"
                             "complete_tx::bytes";
    for (const std::string &suffix :
         {form, std::string("d.shared::cluster.global."
                            "mbarrier::complete_tx::bytes")})
      if (opcode.size() == bulk.size() + 1 + suffix.size() &&
          opcode.rfind(bulk, 0) == 0 &&
          opcode.compare(bulk.size() + 1, suffix.size(), suffix) == 0 &&
          opcode[bulk.size()] >= '1' && opcode[bulk.size()] <= '5') {
        inst.opcode = Opcode::TensorLoad;
        inst.n = unsigned(opcode[bulk.size()] - '0');
        return true;
      }
    // wgmma.mma_async.sync.aligned.m64nNk16.f32.bf16.bf16
    const std::string prefix = "wgmma.mma_async.sync.aligned.m64n",
                      suffix = "k16.f32.bf16.bf16";
    if (opcode.rfind(prefix, 0) == 0 &&
        opcode.size() > prefix.size() + suffix.size() &&
        opcode.compare(opcode.size() - suffix.size(), suffix.size(), suffix) ==
            0) {
      std::string n = opcode.substr(
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
    return fail("unsupported instruction `" + opcode +
                "` (of wgmma, only m64nNk16 f32 += bf16 * bf16 is emulated)");
  }

  bool instruction(const std::string &text, Instruction &inst) {
    inst.line = line;
    inst.text = text;
    std::string t = text;
    if (t[0] == '@') {
      size_t sp = t.find_first_of(" \t\r\n");
      std::string guard = t.substr(1, sp - 1);
      inst.guardNegated = guard[0] == '!';
      inst.guard = reg(inst.guardNegated ? guard.substr(1) : guard);
      t = trim(t.substr(sp));
    }
    size_t sp = t.find_first_of(" \t\r\n");
    std::string opcode = t.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : trim(t.substr(sp));
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
      std::vector<std::string> parts = splitTopLevel(rest);
      Operand rets, fn, args;
      rets.kind = args.kind = Operand::Kind::Vector;
      size_t i = 0;
      auto list = [&](const std::string &p, Operand &into) {
        for (const std::string &e : splitTopLevel(p.substr(1, p.size() - 2))) {
          Operand a;
          if (!operand(e, a))
            return false;
          into.elements.push_back(a);
        }
        return true;
      };
      if (i < parts.size() && parts[i][0] == '(' && !list(parts[i++], rets))
        return false;
      if (i >= parts.size() || !operand(parts[i++], fn) ||
          fn.kind != Operand::Kind::Function)
        return fail("bad call target in `" + text + "`");
      if (i < parts.size() && (parts[i][0] != '(' || !list(parts[i++], args)))
        return false;
      inst.operands = {rets, fn, args};
      return true;
    }
    // [dst], [tensor map, {coordinates}], [mbarrier]
    if (inst.opcode == Opcode::TensorLoad) {
      std::vector<std::string> parts = splitTopLevel(rest);
      Operand dst, map, coordinates, barrier;
      if (parts.size() != 3 || parts[1].size() < 2 || parts[1][0] != '[' ||
          !operand(parts[0], dst) || !operand(parts[2], barrier))
        return fail("unsupported cp.async.bulk.tensor operands: `" + text +
                    "`");
      std::vector<std::string> inner =
          splitTopLevel(parts[1].substr(1, parts[1].size() - 2));
      if (inner.size() != 2 || !operand(inner[0], map) ||
          map.kind != Operand::Kind::Register ||
          !operand(inner[1], coordinates) ||
          coordinates.kind != Operand::Kind::Vector ||
          coordinates.elements.size() != inst.n)
        return fail("cp.async.bulk.tensor needs [map register, {" +
                    std::to_string(inst.n) + " coordinates}]: `" + text + "`");
      inst.operands = {dst, map, coordinates, barrier};
      return true;
    }
    for (const std::string &p : splitTopLevel(rest)) {
      Operand o;
      bool label = inst.opcode == Opcode::Bra;
      if (!operand(p, o, label))
        return false;
      inst.operands.push_back(o);
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
                    text + "`");
    }
    if (inst.opcode == Opcode::WgmmaWait &&
        (inst.operands.size() != 1 ||
         inst.operands[0].kind != Operand::Kind::Immediate))
      return fail("wgmma.wait_group needs an immediate count: `" + text + "`");
    // A warpgroup's registers per thread: 24 to 256, a multiple of 8.
    if (inst.opcode == Opcode::SetMaxNReg &&
        (inst.operands.size() != 1 ||
         inst.operands[0].kind != Operand::Kind::Immediate ||
         inst.operands[0].value < 24 || inst.operands[0].value > 256 ||
         inst.operands[0].value % 8))
      return fail("setmaxnreg needs an immediate count of 24 to 256, a "
                  "multiple of 8: `" +
                  text + "`");
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
                    text + "`");
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
