# The leadflow worker image (docker-compose.yml builds it as the `worker` service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LEADFLOW_METRICS_ADDRESS=0.0.0.0:9464 \
    LEADFLOW_DATA_DIR=/var/lib/leadflow

WORKDIR /app
COPY pyproject.toml README.md worker.py ./
COPY leadflow ./leadflow
COPY runtime ./runtime
COPY activities ./activities
COPY workflows ./workflows
COPY simulation ./simulation
COPY api ./api
COPY bench ./bench
COPY cli ./cli
COPY scenarios ./scenarios
# Bytecode is shipped even though the image writes none at run time: the workflow sandbox
# re-imports the journey module for every journey and would otherwise compile it each time.
RUN pip install --no-cache-dir -e . && python -m compileall -q leadflow runtime activities workflows simulation api bench cli worker.py \
    && useradd --system --create-home leadflow && mkdir -p /var/lib/leadflow \
    && chown leadflow /var/lib/leadflow
USER leadflow

EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=4)"]
CMD ["leadflow", "worker"]
