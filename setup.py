"""Only what pyproject.toml cannot say: the wheel carries the bundled scenarios and sweeps
(``scenarios/``, ``sweeps/`` of the clone) as ``sinsim/_bundled/``, keeping their relative
layout (a sweep's ``scenario: ../scenarios/tiny.yaml`` resolves there too)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithBundled(build_py):
    def run(self):
        super().run()
        for kind in ("scenarios", "sweeps"):
            dest = Path(self.build_lib) / "sinsim" / "_bundled" / kind
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted((ROOT / kind).iterdir()):
                if f.suffix in (".yaml", ".csv", ".tle", ".xml"):
                    shutil.copyfile(f, dest / f.name)


setup(cmdclass={"build_py": BuildWithBundled})
