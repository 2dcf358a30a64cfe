# The pipeline's worker image: one image, one `pipeline worker STAGE` per container.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY configs ./configs
RUN pip install --no-cache-dir .
RUN useradd --create-home pipeline && mkdir -p /data && chown pipeline /data
USER pipeline
ENTRYPOINT ["pipeline"]
CMD ["--help"]
