FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY runtime runtime
COPY exact exact
COPY receiver receiver
COPY workers workers
COPY subscriptions subscriptions
COPY sandbox sandbox
RUN pip install --no-cache-dir .
USER nobody
CMD ["exact-pipeline", "--help"]
