# The service image: every package pyproject.toml's [tool.setuptools.packages.find] include lists, with its
# dependencies, run as a non-root user. tests/ops/test_image_files.py installs exactly what is copied here.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app
WORKDIR /app
# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import subprocess, sys, tomllib; \
    deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', *deps])"
COPY README.md ./
COPY runtime runtime
COPY exact exact
COPY connections connections
COPY subscriptions subscriptions
COPY sync sync
COPY delivery delivery
COPY commands commands
COPY receiver receiver
COPY workers workers
COPY ops ops
COPY console console
COPY sandbox sandbox
COPY schema schema
COPY cli cli
RUN pip install --no-deps . && rm -rf build *.egg-info
# A numeric user, so an orchestrator's "must not run as root" check can verify it.
USER 10001:10001
CMD ["exact-pipeline", "--help"]
