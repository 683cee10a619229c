"""Build script: compiles every ``src_cython/*.pyx`` into ``nncore._ext.<name>``.

Compiler flags:
  * ``-O3`` for the baseline of the target (SSE2 on x86-64), never
    ``-march=native``: a wheel built here must run on any x86-64.
  * Runtime CPU dispatch (x86-64 with GCC or Clang): ``src_cython/nn_level.c``,
    the hot kernels, is compiled three times -- baseline, AVX2+FMA
    (``-mavx2 -mfma``) and AVX-512 F/BW/DQ/VL -- into one static library
    linked into the extensions; they pick the best copy the CPU supports at
    first use (``nn_dispatch.h``; ``NNCORE_CPU_LEVEL`` forces a lower one).
    Elsewhere (arm64, MSVC) only the baseline copy is built.
  * ``NNCORE_NATIVE=1`` (developers): everything with ``-march=native`` and
    no dispatch -- fastest on the build machine, runs nowhere older.
    ``NNCORE_PORTABLE=1`` is accepted and is now the default.
  * OpenMP (``-fopenmp`` / ``/openmp``) when a probe program compiles and links
    with it; otherwise the build goes on single-threaded and says so.
    ``NNCORE_NO_OPENMP=1`` forces that.
  * never ``-ffast-math``: it would let the compiler assume no NaN/inf, and
    nncore's input checks and TerminateOnNaN rely on NaN behaving as NaN.
  * ``NNCORE_SANITIZE=address`` builds with AddressSanitizer (see
    ``tests/run_asan.sh``); ``NNCORE_DEBUG=1`` turns Cython bounds checks on.
"""
import concurrent.futures
import glob
import json
import os
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = "src_cython"


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _compiles(compiler, cflags, ldflags, code):
    """Does ``code`` compile and link with these flags? (probe, no output)"""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                     extra_postargs=ldflags)
            return True
        except Exception:
            return False


OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) { int n = 0;
    #pragma omp parallel reduction(+:n)
      n += 1;
      return n > 0 ? 0 : 1; }
""")


# Each CPU level of nn_level.c: its name and the flags that enable its
# instructions (GCC / Clang).  AVX-512: F, BW, DQ and VL -- what the float
# and double kernels use (x86-64-v4 without CD, which nothing here needs).
CPU_LEVELS = [
    (0, "baseline", []),
    (1, "avx2", ["-mavx2", "-mfma"]),
    (2, "avx512", ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
                   "-mavx2", "-mfma"]),
]

# compiles only where the compiler targets x86-64 (not arm64, not a
# universal2 build that also targets arm64)
X86_64_PROBE = textwrap.dedent("""
    #if !defined(__x86_64__)
    #error not x86-64
    #endif
    int main(void) { return 0; }
""")


class BuildExt(build_ext):
    def build_kernel_levels(self, cflags, native):
        """Compile nn_level.c once per CPU level into the static library
        nncore_kernels; returns the level names built and the -D flags every
        extension needs to call them."""
        levels = [CPU_LEVELS[0]]
        if (not native and self.compiler.compiler_type != "msvc"
                and _compiles(self.compiler, CPU_LEVELS[1][2], [], X86_64_PROBE)):
            levels.append(CPU_LEVELS[1])
            if _compiles(self.compiler, CPU_LEVELS[2][2], [], X86_64_PROBE):
                levels.append(CPU_LEVELS[2])
        defines = [f"-DNN_CPU_DISPATCH={int(len(levels) > 1)}",
                   f"-DNN_CPU_DISPATCH_AVX512={int(len(levels) > 2)}"]
        if native:
            defines.append("-DNN_NATIVE_BUILD=1")
        src = os.path.join(SRC, "nn_level.c")
        lib_dir = os.path.join(self.build_temp, "nncore_kernels")

        inputs = [src] + glob.glob(os.path.join(SRC, "*.h"))
        newest_input = max(os.path.getmtime(p) for p in inputs)

        def compile_level(level):
            number, name, flags = level
            out = os.path.join(lib_dir, name)
            args = cflags + flags + defines + [f"-DNN_KERNEL_LEVEL={number}"]
            obj = self.compiler.object_filenames([src], output_dir=out)[0]
            stamp = obj + ".args"
            # a second build (CI installs twice) reuses an object made from
            # the same sources with the same flags
            if (not self.force and os.path.exists(obj) and os.path.exists(stamp)
                    and os.path.getmtime(obj) > newest_input):
                with open(stamp) as f:
                    if f.read() == " ".join(args):
                        return [obj]
            objs = self.compiler.compile([src], output_dir=out, include_dirs=[SRC],
                                         extra_postargs=args)
            with open(stamp, "w") as f:
                f.write(" ".join(args))
            return objs
        # the levels are independent: compile them side by side (build_ext -j)
        with concurrent.futures.ThreadPoolExecutor(max(1, self.parallel or 1)) as pool:
            objects = [o for objs in pool.map(compile_level, levels) for o in objs]
        self.compiler.create_static_lib(objects, "nncore_kernels", output_dir=lib_dir)
        for ext in self.extensions:
            ext.libraries = list(ext.libraries or []) + ["nncore_kernels"]
            ext.library_dirs = list(ext.library_dirs or []) + [lib_dir]
        return [name for _, name, _ in levels], defines


    def build_extensions(self):
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            cflags, ldflags, omp_c, omp_l = ["/O2", "/fp:precise"], [], ["/openmp"], []
        else:
            # -Wno-psabi: nn_rnn8.h passes 8-float vectors between inlined
            # functions; at the baseline level GCC notes an ABI change of 2011
            cflags = ["-O3", "-fno-math-errno", "-Wno-unused-function",
                      "-Wno-unreachable-code", "-Wno-maybe-uninitialized", "-Wno-psabi"]
            ldflags = []
            omp_c, omp_l = ["-fopenmp"], ["-fopenmp"]
            if _env_flag("NNCORE_NATIVE"):
                if _compiles(self.compiler, ["-march=native"], [], "int main(void){return 0;}\n"):
                    cflags.append("-march=native")
            sanitize = os.environ.get("NNCORE_SANITIZE")
            if sanitize:
                cflags += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g", "-O1"]
                ldflags += [f"-fsanitize={sanitize}"]
        openmp = False
        if not _env_flag("NNCORE_NO_OPENMP"):
            openmp = _compiles(self.compiler, omp_c, omp_l, OPENMP_PROBE)
        if openmp:
            cflags += omp_c
            ldflags += omp_l
        else:
            sys.stderr.write(
                "\n*** nncore: building WITHOUT OpenMP (the compiler could not "
                "build an OpenMP probe, or NNCORE_NO_OPENMP is set).\n*** The "
                "kernels will run single-threaded. On macOS: brew install libomp.\n\n")
        native = "-march=native" in cflags
        levels, defines = self.build_kernel_levels(cflags, native)
        for ext in self.extensions:
            ext.extra_compile_args = list(cflags) + defines
            ext.extra_link_args = list(ldflags)
        # Recorded so nncore.show_config() can say how this copy was built.
        info = {"openmp": openmp, "compile_args": cflags, "link_args": ldflags,
                "compiler": ctype, "portable": not native,
                "cpu_levels": levels}
        # build_lib feeds the wheel; the source tree serves in-place builds.
        out_dirs = [os.path.join(self.build_lib, "nncore", "_ext"),
                    os.path.join(HERE, "nncore", "_ext")]
        for out_dir in out_dirs:
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "build_info.json"), "w") as f:
                json.dump(info, f, indent=1)
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    directives = {
        "language_level": 3,
        "boundscheck": _env_flag("NNCORE_DEBUG"),
        "wraparound": False,
        "initializedcheck": False,
        "cdivision": True,
        "embedsignature": True,
    }
    # every module includes the shared kernels: rebuild all when any changes
    depends = sorted(glob.glob(os.path.join(SRC, "*.h")) + glob.glob(os.path.join(SRC, "*.pxd"))
                     + [os.path.join(SRC, "nn_level.c")])
    exts = []
    for pyx in sorted(glob.glob(os.path.join(SRC, "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(f"nncore._ext.{name}", [pyx], include_dirs=[SRC],
                              depends=depends))
    return cythonize(exts, compiler_directives=directives, include_path=[SRC],
                     quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
