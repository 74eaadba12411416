# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Build the zchan extension.

In a zchan source tree (../userspace exists) the library's sources are
compiled into the extension, so it needs no installed libzchan and is
unaffected by how libzchan.a was last built (SANITIZE=1...).  Elsewhere,
or with ZCHAN_SYSTEM_LIB=1, it links the installed libzchan found by
pkg-config (libzchan-dev / make install).
"""
import glob
import os
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
USERSPACE = os.path.join(TOP, "userspace")
CFLAGS = ["-std=gnu11", "-D_GNU_SOURCE", "-fvisibility=hidden",
          "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]


def pkg_config(*args):
    out = subprocess.check_output(["pkg-config", *args, "zchan"], text=True)
    return out.split()


def extension():
    src = sorted(os.path.relpath(f, HERE)
                 for f in glob.glob(os.path.join(HERE, "src", "*.c")))
    own_headers = [os.path.join("src", "zchan_py.h")]
    if os.path.isdir(USERSPACE) and not os.environ.get("ZCHAN_SYSTEM_LIB"):
        # relative to setup.py: setuptools refuses absolute source paths
        lib_src = sorted(os.path.relpath(f, HERE)
                         for f in glob.glob(os.path.join(USERSPACE, "*.c")))
        headers = [os.path.relpath(f, HERE) for f in
                   glob.glob(os.path.join(USERSPACE, "*.h")) +
                   [os.path.join(TOP, "include", "zchan.h"),
                    os.path.join(TOP, "include", "uapi", "linux", "zchan.h")]]
        return Extension("zchan._zchan", src + lib_src, depends=own_headers + headers,
                         include_dirs=[os.path.join(TOP, "include"),
                                       os.path.join(TOP, "include", "uapi")],
                         libraries=["uring"], extra_compile_args=CFLAGS)
    cflags = pkg_config("--cflags")
    libs = pkg_config("--libs")
    return Extension("zchan._zchan", src, depends=own_headers,
                     include_dirs=[f[2:] for f in cflags if f.startswith("-I")],
                     library_dirs=[f[2:] for f in libs if f.startswith("-L")],
                     libraries=[f[2:] for f in libs if f.startswith("-l")],
                     extra_compile_args=CFLAGS)


# PEP 561: the stubs and the marker that says they are complete
setup(packages=["zchan"], ext_modules=[extension()],
      package_data={"zchan": ["py.typed", "*.pyi"]})
