"""Build script: compiles every ``src_cython/*.pyx`` into ``nncore._ext.<name>``.

Compiler flags:
  * ``-O3`` and, for source builds, ``-march=native`` (the kernels are written
    so the compiler vectorises them for the machine that builds them).
    ``NNCORE_PORTABLE=1`` drops ``-march=native`` for wheels/containers.
  * OpenMP (``-fopenmp`` / ``/openmp``) when a probe program compiles and links
    with it; otherwise the build goes on single-threaded and says so.
    ``NNCORE_NO_OPENMP=1`` forces that.
  * never ``-ffast-math``: it would let the compiler assume no NaN/inf, and
    nncore's input checks and TerminateOnNaN rely on NaN behaving as NaN.
  * ``NNCORE_SANITIZE=address`` builds with AddressSanitizer (see
    ``tests/run_asan.sh``); ``NNCORE_DEBUG=1`` turns Cython bounds checks on.
"""
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


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            cflags, ldflags, omp_c, omp_l = ["/O2", "/fp:precise"], [], ["/openmp"], []
        else:
            cflags = ["-O3", "-fno-math-errno", "-Wno-unused-function",
                      "-Wno-unreachable-code", "-Wno-maybe-uninitialized"]
            ldflags = []
            omp_c, omp_l = ["-fopenmp"], ["-fopenmp"]
            if not _env_flag("NNCORE_PORTABLE"):
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
        for ext in self.extensions:
            ext.extra_compile_args = list(cflags)
            ext.extra_link_args = list(ldflags)
        # Recorded so nncore.show_config() can say how this copy was built.
        info = {"openmp": openmp, "compile_args": cflags, "link_args": ldflags,
                "compiler": ctype, "portable": _env_flag("NNCORE_PORTABLE")}
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
    depends = sorted(glob.glob(os.path.join(SRC, "*.h")) + glob.glob(os.path.join(SRC, "*.pxd")))
    exts = []
    for pyx in sorted(glob.glob(os.path.join(SRC, "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(f"nncore._ext.{name}", [pyx], include_dirs=[SRC],
                              depends=depends))
    return cythonize(exts, compiler_directives=directives, include_path=[SRC],
                     quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
