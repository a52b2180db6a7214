// nncore._cpu: what this processor and its operating system can run, read with CPUID and XGETBV.
// nncore ships one build of its core per x86-64 level (nncore/_core.py chooses one); the choice
// must be made before any of them is loaded, and by code that runs on every CPU — so this
// module is compiled with no -march flag, uses no C++ library, and talks to Python through the
// plain C API. /proc/cpuinfo would not do: under an emulator (qemu-user) it shows the host's
// flags, not the emulated CPU's, and it says nothing of whether the OS saves the wide registers.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__x86_64__) || defined(_M_X64)
#define NNCORE_X86_64 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace {

#ifdef NNCORE_X86_64
struct Regs {
  unsigned a, b, c, d;
};

Regs cpuid(unsigned leaf, unsigned subleaf) {
  Regs r{0, 0, 0, 0};
#if defined(_MSC_VER)
  int out[4];
  __cpuidex(out, static_cast<int>(leaf), static_cast<int>(subleaf));
  r = {static_cast<unsigned>(out[0]), static_cast<unsigned>(out[1]), static_cast<unsigned>(out[2]),
       static_cast<unsigned>(out[3])};
#else
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
#endif
  return r;
}

// XCR0: which register states the OS saves on a context switch. Only read when CPUID says
// OSXSAVE, since XGETBV faults otherwise.
unsigned long long xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}

bool bit(unsigned word, int i) { return (word >> i) & 1u; }

int add_flag(PyObject* dict, const char* name, bool value) {
  return PyDict_SetItemString(dict, name, value ? Py_True : Py_False);
}
#endif

// probe() -> {"arch": "x86_64" | "other", "vendor": str, "family": int, "model": int,
//             "features": {name: bool}}; the features are those the x86-64 levels v2, v3, v4
// require, plus "os_avx" / "os_avx512" (the OS saves YMM / ZMM and mask registers).
PyObject* probe(PyObject*, PyObject*) {
  PyObject* features = PyDict_New();
  if (!features) return nullptr;
#ifdef NNCORE_X86_64
  const Regs r0 = cpuid(0, 0);
  char vendor[13];
  const unsigned words[3] = {r0.b, r0.d, r0.c};
  for (int w = 0; w < 3; ++w)
    for (int i = 0; i < 4; ++i) vendor[4 * w + i] = static_cast<char>((words[w] >> (8 * i)) & 0xFF);
  vendor[12] = '\0';
  const Regs r1 = cpuid(1, 0);
  const unsigned base_family = (r1.a >> 8) & 0xF, base_model = (r1.a >> 4) & 0xF;
  const unsigned family = base_family == 0xF ? base_family + ((r1.a >> 20) & 0xFF) : base_family;
  const unsigned model = (base_family == 0x6 || base_family == 0xF)
                             ? base_model + (((r1.a >> 16) & 0xF) << 4)
                             : base_model;
  const Regs r7 = r0.a >= 7 ? cpuid(7, 0) : Regs{0, 0, 0, 0};
  const Regs e0 = cpuid(0x80000000u, 0);
  const Regs e1 = e0.a >= 0x80000001u ? cpuid(0x80000001u, 0) : Regs{0, 0, 0, 0};
  const bool osxsave = bit(r1.c, 27);
  const unsigned long long xcr = osxsave ? xcr0() : 0;
  const bool os_avx = osxsave && (xcr & 0x6) == 0x6;             // XMM and YMM state
  const bool os_avx512 = os_avx && (xcr & 0xE0) == 0xE0;         // opmask, ZMM 0-15 and 16-31
  struct Flag {
    const char* name;
    bool value;
  };
  const Flag flags[] = {
      // x86-64-v2
      {"cx16", bit(r1.c, 13)}, {"lahf_lm", bit(e1.c, 0)}, {"popcnt", bit(r1.c, 23)},
      {"sse3", bit(r1.c, 0)}, {"ssse3", bit(r1.c, 9)}, {"sse4_1", bit(r1.c, 19)},
      {"sse4_2", bit(r1.c, 20)},
      // x86-64-v3
      {"avx", bit(r1.c, 28)}, {"avx2", bit(r7.b, 5)}, {"bmi1", bit(r7.b, 3)},
      {"bmi2", bit(r7.b, 8)}, {"f16c", bit(r1.c, 29)}, {"fma", bit(r1.c, 12)},
      {"lzcnt", bit(e1.c, 5)}, {"movbe", bit(r1.c, 22)}, {"os_avx", os_avx},
      // x86-64-v4
      {"avx512f", bit(r7.b, 16)}, {"avx512bw", bit(r7.b, 30)}, {"avx512cd", bit(r7.b, 28)},
      {"avx512dq", bit(r7.b, 17)}, {"avx512vl", bit(r7.b, 31)}, {"os_avx512", os_avx512},
  };
  for (const Flag& f : flags)
    if (add_flag(features, f.name, f.value) < 0) {
      Py_DECREF(features);
      return nullptr;
    }
  return Py_BuildValue("{s:s,s:s,s:I,s:I,s:N}", "arch", "x86_64", "vendor", vendor, "family",
                       family, "model", model, "features", features);
#else
  return Py_BuildValue("{s:s,s:s,s:I,s:I,s:N}", "arch", "other", "vendor", "", "family", 0u,
                       "model", 0u, "features", features);
#endif
}

PyMethodDef methods[] = {
    {"probe", probe, METH_NOARGS,
     "probe() -> dict: this CPU's vendor, family, model and the x86-64 level features it and "
     "the OS support (CPUID and XGETBV)"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu",
                      "What this CPU can run; nncore._core uses it to load its build for this CPU.",
                      -1, methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__cpu() { return PyModule_Create(&module); }
